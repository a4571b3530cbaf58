import * as ort from 'onnxruntime-node';
import { buildTrainStepGraph, globalWeightInput, PROXIMAL_MU_INPUT } from './classifier-graphs';
import { checkWeights, ClassifierManifest, isImportedManifest, ModelManifest, ModelPackage } from './manifest';
import { seededRandom, shuffleInPlace } from '@fl/datasets';
import { NamedTensors } from './safetensors';

export interface RunnerOptions {
  intraOpNumThreads?: number;
  interOpNumThreads?: number;
}

export interface LabeledData {
  /** [n, F] raw (un-normalised) features, row-major. */
  x: Float32Array;
  /** Class index per row. */
  labels: Int32Array;
  n: number;
}

export interface TrainConfig {
  epochs: number;
  batchSize: number;
  learningRate: number;
  /** Seed of the per-epoch shuffles. */
  seed: number;
  /**
   * FedProx: adds (mu / 2) ||w - w_global||^2 to the local loss, w_global being
   * the weights training starts from (the round's global weights). 0 or absent:
   * the plain train step.
   */
  proximalMu?: number;
  /** Checked after every batch: once aborted, training stops there with a TrainingCancelledError. */
  signal?: AbortSignal;
  /** Called after every batch with the number of batches run so far. */
  onStep?: (steps: number) => void;
}

/** Local training stopped because its task was cancelled; `steps` batches had run. */
export class TrainingCancelledError extends Error {
  constructor(readonly steps: number) {
    super(`training cancelled after ${steps} batch(es)`);
    this.name = 'TrainingCancelledError';
  }
}

/** After each batch: report progress, and stop if the task was cancelled meanwhile. */
export function afterBatch(cfg: TrainConfig, steps: number): void {
  cfg.onStep?.(steps);
  if (cfg.signal?.aborted) throw new TrainingCancelledError(steps);
}

export interface TrainResult {
  weights: NamedTensors;
  /** Example-weighted mean batch loss over the last epoch. */
  meanLoss: number;
  steps: number;
  /** Examples processed over all epochs. */
  examples: number;
}

export interface EvalResult {
  loss: number;
  accuracy: number;
  examples: number;
}


/** What differs between the runners' training loops; everything else is `runTrainingLoop`'s. */
export interface TrainingLoopSpec {
  session: ort.InferenceSession;
  /** Weights, state and hyper-parameters; updated in place from the step's `<name>.next` outputs. */
  feeds: Record<string, ort.Tensor>;
  /** Inputs carried from one step to the next (`<name>` <- `<name>.next`). */
  carried: readonly string[];
  data: LabeledData;
  cfg: TrainConfig;
  /** Floats per example in x and in y. */
  xWidth: number;
  yWidth: number;
  /** Shape of x for a batch of m examples. */
  xDims(m: number): number[];
  /** Rows order[start..start+m) into xb and their targets into yb (yb's first m rows must be written whole). */
  fillBatch(order: Int32Array, start: number, m: number, xb: Float32Array, yb: Float32Array): void;
  /** Stop with an error naming the step when the loss is not finite. */
  requireFiniteLoss?: boolean;
}

/**
 * Local training, one train-step run per batch: epochs of seeded shuffles, batch buffers reused
 * (the last partial batch uses prefix views of them), progress and cancellation after each batch.
 * Returns the batches run and the example-weighted mean loss of the last epoch.
 */
export async function runTrainingLoop(spec: TrainingLoopSpec): Promise<{ steps: number; meanLoss: number }> {
  const { session, feeds, carried, data, cfg, xWidth, yWidth } = spec;
  const { n } = data;
  const batch = Math.min(cfg.batchSize, n);
  const xb = new Float32Array(batch * xWidth);
  const yb = new Float32Array(batch * yWidth);
  const batchTensors = (m: number) => ({
    x: new ort.Tensor('float32', m === batch ? xb : xb.subarray(0, m * xWidth), spec.xDims(m)),
    y: new ort.Tensor('float32', m === batch ? yb : yb.subarray(0, m * yWidth), [m, yWidth]),
  });
  const full = batchTensors(batch);
  const tail = n % batch ? batchTensors(n % batch) : full;

  const order = Int32Array.from({ length: n }, (_, i) => i);
  const rand = seededRandom(cfg.seed);
  let steps = 0;
  let lossSum = 0;
  for (let epoch = 0; epoch < cfg.epochs; epoch++) {
    shuffleInPlace(order, rand);
    lossSum = 0;
    for (let start = 0; start < n; start += batch) {
      const m = Math.min(batch, n - start);
      spec.fillBatch(order, start, m, xb, yb);
      const t = m === batch ? full : tail;
      feeds.x = t.x;
      feeds.y = t.y;
      const out = await session.run(feeds);
      const loss = (out.loss.data as Float32Array)[0];
      if (spec.requireFiniteLoss && !Number.isFinite(loss)) {
        throw new Error(`train: the loss is ${loss} at step ${steps + 1} (epoch ${epoch + 1}); lower the learning rate`);
      }
      for (const name of carried) feeds[name] = out[`${name}.next`];
      lossSum += loss * m;
      steps++;
      afterBatch(cfg, steps);
    }
  }
  return { steps, meanLoss: lossSum / n };
}
export function checkSessionIO(session: ort.InferenceSession, graph: string, inputs: string[], outputs: string[]): void {
  const missingIn = inputs.filter((n) => !session.inputNames.includes(n));
  const missingOut = outputs.filter((n) => !session.outputNames.includes(n));
  if (missingIn.length || missingOut.length) {
    throw new Error(
      `${graph} graph does not match the manifest: missing inputs [${missingIn.join(', ')}], missing outputs [${missingOut.join(', ')}]`,
    );
  }
}

/** What an edge worker needs of a model package, whatever its format. */
export interface ModelRunner {
  readonly manifest: ModelManifest;
  /** Local training from `weights`; returns the tensors to send back (the manifest's exchanged tensors). */
  train(weights: NamedTensors, data: LabeledData, cfg: TrainConfig): Promise<TrainResult>;
  /** Loss (the package's loss) and argmax accuracy over all rows. */
  evaluate(weights: NamedTensors, data: LabeledData): Promise<EvalResult>;
  /** Class probabilities (or scores), [n, classes] row-major. */
  predict(weights: NamedTensors, x: Float32Array, n: number): Promise<Float32Array>;
  release(): Promise<void>;
}

export function sessionOptions(opts: RunnerOptions): ort.InferenceSession.SessionOptions {
  return {
    intraOpNumThreads: opts.intraOpNumThreads ?? 1,
    interOpNumThreads: opts.interOpNumThreads ?? 1,
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
  };
}

export function checkTrainConfig(cfg: TrainConfig): void {
  if (!Number.isSafeInteger(cfg.epochs) || cfg.epochs < 1) throw new Error(`train: epochs must be a positive integer, got ${cfg.epochs}`);
  if (!Number.isSafeInteger(cfg.batchSize) || cfg.batchSize < 1) throw new Error(`train: batchSize must be a positive integer, got ${cfg.batchSize}`);
  if (!(Number.isFinite(cfg.learningRate) && cfg.learningRate > 0)) throw new Error(`train: learningRate must be > 0, got ${cfg.learningRate}`);
  const mu = cfg.proximalMu;
  if (mu !== undefined && !(Number.isFinite(mu) && mu >= 0)) throw new Error(`train: proximalMu must be >= 0, got ${mu}`);
}

/**
 * The FedProx train-step session, created on first use: a package trains
 * with FedProx only in FedProx tasks, so the others never pay for it.
 */
export class ProximalTrainStep {
  private session?: Promise<ort.InferenceSession>;

  constructor(
    private readonly create: () => Promise<ort.InferenceSession>,
  ) {}

  get(): Promise<ort.InferenceSession> {
    this.session ??= this.create().catch((err) => {
      this.session = undefined;
      throw err;
    });
    return this.session;
  }

  async release(): Promise<void> {
    const s = this.session;
    this.session = undefined;
    if (s) await (await s.catch(() => undefined))?.release();
  }
}

/** The FedProx inputs: mu, and the starting weights as `<param>.global` (onnxruntime does not write into its inputs, so they share buffers). */
export function proximalFeeds(params: readonly { name: string; shape: number[] }[], weights: NamedTensors, mu: number): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = { [PROXIMAL_MU_INPUT]: new ort.Tensor('float32', Float32Array.of(mu), []) };
  for (const p of params) feeds[globalWeightInput(p.name)] = new ort.Tensor('float32', weights.get(p.name)!.data, p.shape);
  return feeds;
}

export function checkLabeledData(data: LabeledData, features: number, classes: number): void {
  const { n, x, labels } = data;
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`data: n must be a positive integer, got ${n}`);
  if (x.length !== n * features) throw new Error(`data: x has ${x.length} values, expected n * ${features} = ${n * features}`);
  if (labels.length !== n) throw new Error(`data: labels has ${labels.length} entries, expected ${n}`);
  for (let i = 0; i < n; i++) {
    if (!(labels[i] >= 0 && labels[i] < classes)) throw new Error(`data: label ${labels[i]} at row ${i} is outside [0, ${classes})`);
  }
}

/** Runs a classifier package's inference and train-step graphs with onnxruntime-node. */
export class OnnxClassifierRunner implements ModelRunner {
  private readonly features: number;
  private readonly classes: number;

  /**
   * The FedProx step is built here from the manifest, as the package's own
   * train step was when the package was built (the built-in classifier's
   * graphs are a function of its manifest), so every published package can
   * train with FedProx.
   */
  private readonly proximal: ProximalTrainStep;

  private constructor(
    readonly manifest: ClassifierManifest,
    private readonly inference: ort.InferenceSession,
    private readonly trainStep: ort.InferenceSession,
    options: ort.InferenceSession.SessionOptions,
  ) {
    this.features = manifest.inputs.features.length;
    this.classes = manifest.classes.length;
    this.proximal = new ProximalTrainStep(() => ort.InferenceSession.create(buildTrainStepGraph(manifest, { fedProx: true }), options));
  }

  static async create(pkg: ModelPackage, opts: RunnerOptions = {}): Promise<OnnxClassifierRunner> {
    const manifest = pkg.manifest;
    if (isImportedManifest(manifest)) throw new Error(`model "${manifest.name}" is an imported model (${manifest.format}); run it with OnnxModelRunner`);
    const options = sessionOptions(opts);
    const params = pkg.manifest.parameters.map((p) => p.name);
    const inference = await ort.InferenceSession.create(pkg.inferenceOnnx, options);
    let trainStep: ort.InferenceSession;
    try {
      trainStep = await ort.InferenceSession.create(pkg.trainStepOnnx, options);
      checkSessionIO(inference, 'inference', [...params, 'x'], ['logits', 'probabilities']);
      checkSessionIO(trainStep, 'train-step', [...params, 'x', 'y', 'lr'], [...params.map((p) => `${p}.next`), 'loss']);
    } catch (e) {
      await inference.release();
      throw e;
    }
    return new OnnxClassifierRunner(manifest, inference, trainStep, options);
  }

  async train(weights: NamedTensors, data: LabeledData, cfg: TrainConfig): Promise<TrainResult> {
    this.checkData(data);
    checkWeights(this.manifest, weights);
    checkTrainConfig(cfg);
    if (cfg.signal?.aborted) throw new TrainingCancelledError(0);

    const F = this.features;
    const C = this.classes;
    const params = this.manifest.parameters;
    const mu = cfg.proximalMu ?? 0;
    const feeds: Record<string, ort.Tensor> = { lr: new ort.Tensor('float32', Float32Array.of(cfg.learningRate), []) };
    for (const p of params) feeds[p.name] = new ort.Tensor('float32', weights.get(p.name)!.data, p.shape);
    if (mu > 0) Object.assign(feeds, proximalFeeds(params, weights, mu));
    const { steps, meanLoss } = await runTrainingLoop({
      session: mu > 0 ? await this.proximal.get() : this.trainStep,
      feeds,
      carried: params.map((p) => p.name),
      data,
      cfg,
      xWidth: F,
      yWidth: C,
      xDims: (m) => [m, F],
      fillBatch: (order, start, m, xb, yb) => {
        yb.fill(0, 0, m * C);
        for (let r = 0; r < m; r++) {
          const row = order[start + r];
          xb.set(data.x.subarray(row * F, row * F + F), r * F);
          yb[r * C + data.labels[row]] = 1;
        }
      },
    });
    const next: NamedTensors = new Map();
    for (const p of params) next.set(p.name, { shape: [...p.shape], data: feeds[p.name].data as Float32Array });
    return { weights: next, meanLoss, steps, examples: data.n * cfg.epochs };
  }

  /** Mean cross-entropy and argmax accuracy over all rows. */
  async evaluate(weights: NamedTensors, data: LabeledData): Promise<EvalResult> {
    this.checkData(data);
    const { logits } = await this.forward(weights, data.x, data.n);
    const C = this.classes;
    let loss = 0;
    let correct = 0;
    for (let r = 0; r < data.n; r++) {
      const row = logits.subarray(r * C, r * C + C);
      let best = 0;
      for (let c = 1; c < C; c++) if (row[c] > row[best]) best = c;
      let sum = 0;
      for (let c = 0; c < C; c++) sum += Math.exp(row[c] - row[best]);
      loss += row[best] + Math.log(sum) - row[data.labels[r]];
      if (best === data.labels[r]) correct++;
    }
    return { loss: loss / data.n, accuracy: correct / data.n, examples: data.n };
  }

  /** Class probabilities, [n, C] row-major. */
  async predict(weights: NamedTensors, x: Float32Array, n: number): Promise<Float32Array> {
    return (await this.forward(weights, x, n)).probabilities;
  }

  async release(): Promise<void> {
    await Promise.all([this.inference.release(), this.trainStep.release(), this.proximal.release()]);
  }

  private async forward(weights: NamedTensors, x: Float32Array, n: number): Promise<{ logits: Float32Array; probabilities: Float32Array }> {
    checkWeights(this.manifest, weights);
    if (!Number.isSafeInteger(n) || n < 1) throw new Error(`inference: n must be a positive integer, got ${n}`);
    if (x.length !== n * this.features) throw new Error(`inference: x has ${x.length} values, expected n * ${this.features} = ${n * this.features}`);
    const feeds: Record<string, ort.Tensor> = { x: new ort.Tensor('float32', x, [n, this.features]) };
    for (const p of this.manifest.parameters) feeds[p.name] = new ort.Tensor('float32', weights.get(p.name)!.data, p.shape);
    const out = await this.inference.run(feeds);
    return { logits: out.logits.data as Float32Array, probabilities: out.probabilities.data as Float32Array };
  }

  private checkData(data: LabeledData): void {
    checkLabeledData(data, this.features, this.classes);
  }
}
