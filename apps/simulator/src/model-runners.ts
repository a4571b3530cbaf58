import {
  createModelRunner,
  decodePackageBundle,
  EvalResult,
  LabeledData,
  ModelManifest,
  ModelRunner,
  NamedTensors,
  readModelPackage,
  sha256Hex,
  TrainConfig,
  TrainingCancelledError,
  TrainResult,
} from '@fl/models';
import { seededRandom } from '@fl/datasets';
import { EdgeWorkerConfig } from '../../edge-worker/src/config';
import { PackageCache } from '../../edge-worker/src/training/package-cache';

/**
 * Zero compute: fit returns the global weights it was given, evaluation
 * reports loss 0 and accuracy 0 over the held-out rows. What is left of a
 * round is the platform's own work (messages, validation, hashing,
 * aggregation, storage), which is what a scale test measures.
 */
export class ZeroComputeRunner implements ModelRunner {
  constructor(readonly manifest: ModelManifest) {}

  async train(weights: NamedTensors, data: LabeledData, cfg: TrainConfig): Promise<TrainResult> {
    if (cfg.signal?.aborted) throw new TrainingCancelledError(0);
    return { weights, meanLoss: 0, steps: 0, examples: data.n * cfg.epochs };
  }

  async evaluate(_weights: NamedTensors, data: LabeledData): Promise<EvalResult> {
    return { loss: 0, accuracy: 0, examples: data.n };
  }

  async predict(_weights: NamedTensors, _x: Float32Array, n: number): Promise<Float32Array> {
    return new Float32Array(n * this.manifest.classes.length);
  }

  async release(): Promise<void> {}
}

/**
 * What a hostile virtual worker does to its update u = trained - global:
 * sign-flip sends global - u, scale:f sends global + f * u, noise:s sends
 * trained + N(0, s^2) per value. (With zero compute u is 0, so only noise
 * changes anything.)
 */
export type HostileMode = { kind: 'sign-flip' } | { kind: 'scale'; factor: number } | { kind: 'noise'; std: number };

/** SIM_HOSTILE: `<node>:<mode>[,...]`, mode sign-flip, scale:<factor> or noise:<std>. */
export function parseHostile(text: string | undefined): Map<string, HostileMode> {
  const out = new Map<string, HostileMode>();
  for (const item of (text ?? '').split(',').filter(Boolean)) {
    const [node, kind, arg, ...rest] = item.split(':');
    const value = Number(arg);
    let mode: HostileMode;
    if (kind === 'sign-flip' && arg === undefined) mode = { kind };
    else if (kind === 'scale' && Number.isFinite(value)) mode = { kind, factor: value };
    else if (kind === 'noise' && Number.isFinite(value) && value > 0) mode = { kind, std: value };
    else throw new Error(`SIM_HOSTILE: '${item}' is not <node>:sign-flip, <node>:scale:<factor> or <node>:noise:<std>`);
    if (rest.length) throw new Error(`SIM_HOSTILE: '${item}' has too many parts`);
    if (out.has(node)) throw new Error(`SIM_HOSTILE: node '${node}' is named twice`);
    out.set(node, mode);
  }
  return out;
}

/** Runs the honest runner, then turns its update hostile; evaluation stays honest. */
export class HostileRunner implements ModelRunner {
  private readonly rand: () => number;

  constructor(
    private readonly inner: ModelRunner,
    readonly mode: HostileMode,
    seed: number,
  ) {
    this.rand = seededRandom(seed);
  }

  get manifest(): ModelManifest {
    return this.inner.manifest;
  }

  async train(weights: NamedTensors, data: LabeledData, cfg: TrainConfig): Promise<TrainResult> {
    const out = await this.inner.train(weights, data, cfg);
    const hostile: NamedTensors = new Map();
    for (const [name, t] of out.weights) {
      const global = weights.get(name)?.data;
      const trained = t.data;
      const data = new Float32Array(trained.length);
      for (let i = 0; i < data.length; i++) data[i] = this.turn(global ? global[i] : 0, trained[i]);
      hostile.set(name, { shape: [...t.shape], data });
    }
    return { ...out, weights: hostile };
  }

  private turn(global: number, trained: number): number {
    switch (this.mode.kind) {
      case 'sign-flip':
        return global - (trained - global);
      case 'scale':
        return global + this.mode.factor * (trained - global);
      case 'noise':
        return trained + this.mode.std * gaussian(this.rand);
    }
  }

  evaluate(weights: NamedTensors, data: LabeledData): Promise<EvalResult> {
    return this.inner.evaluate(weights, data);
  }

  predict(weights: NamedTensors, x: Float32Array, n: number): Promise<Float32Array> {
    return this.inner.predict(weights, x, n);
  }

  release(): Promise<void> {
    return this.inner.release();
  }
}

function gaussian(rand: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
}

/**
 * One runner per model package for all the virtual workers of a process: a
 * thousand workers on one package need one set of onnxruntime sessions, not a
 * thousand (sessions hold no per-call state, so sharing them is safe).
 * Loading is shared too: the first worker to receive a package loads it, the
 * others wait for that. Runners are kept until the simulator stops (virtual
 * workers may hold any of them), so a simulator is for a bounded run.
 */
export class SharedModelRunners {
  private readonly loading = new Map<string, Promise<ModelRunner>>();

  constructor(private readonly opts: { compute: 'onnx' | 'zero'; ortThreads: number }) {}

  load(sha256: string, bundle: Buffer): Promise<ModelRunner> {
    let runner = this.loading.get(sha256);
    if (!runner) {
      runner = this.create(bundle);
      this.loading.set(sha256, runner);
      runner.catch(() => this.loading.delete(sha256));
    }
    return runner;
  }

  private async create(bundle: Buffer): Promise<ModelRunner> {
    const pkg = readModelPackage(decodePackageBundle(bundle));
    return this.opts.compute === 'zero' ? new ZeroComputeRunner(pkg.manifest) : createModelRunner(pkg, { intraOpNumThreads: this.opts.ortThreads });
  }

  async release(): Promise<void> {
    const all = [...this.loading.values()];
    this.loading.clear();
    await Promise.all(all.map((r) => r.then((x) => x.release()).catch(() => undefined)));
  }
}

/** Packages a virtual worker remembers receiving, as many as an edge worker's cache keeps. */
const RECEIVED_CAPACITY = 4;

/**
 * The edge worker's PackageCache as one virtual worker sees it: it checks each
 * bundle against its hash and knows only the packages this worker received,
 * as a worker's own cache does, but the runners behind it are shared; a
 * hostile worker's runner turns its updates hostile.
 */
export class VirtualPackageCache extends PackageCache {
  private readonly received = new Map<string, ModelRunner>();

  constructor(
    config: EdgeWorkerConfig,
    private readonly shared: SharedModelRunners,
    private readonly hostile: { mode: HostileMode; seed: number } | undefined,
  ) {
    super(config);
  }

  override has(sha256: string): boolean {
    return this.received.has(sha256);
  }

  override async add(sha256: string, bundle: Buffer): Promise<void> {
    if (this.received.has(sha256)) return;
    const actual = sha256Hex(bundle);
    if (actual !== sha256) throw new Error(`model package does not match its sha256 (expected ${sha256}, got ${actual})`);
    const runner = await this.shared.load(sha256, bundle);
    this.received.set(sha256, this.hostile ? new HostileRunner(runner, this.hostile.mode, this.hostile.seed) : runner);
    while (this.received.size > RECEIVED_CAPACITY) this.received.delete(this.received.keys().next().value as string);
  }

  override get(sha256: string): ModelRunner {
    const runner = this.received.get(sha256);
    if (!runner) throw new Error(`model package ${sha256.slice(0, 12)}… was not received by this worker`);
    return runner;
  }

  /** The shared runners are released by the simulator, once, after every virtual worker has stopped. */
  override async onApplicationShutdown(): Promise<void> {
    this.received.clear();
  }
}
