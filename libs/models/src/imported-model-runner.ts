import * as ort from 'onnxruntime-node';
import { checkWeights, exchangedTensors, ImportedModelManifest, isImportedManifest, ModelPackage, ParameterSpec } from './manifest';
import { NamedTensors } from './safetensors';
import { globalWeightInput, PROXIMAL_MU_INPUT } from './classifier-graphs';
import {
  checkLabeledData,
  checkSessionIO,
  checkTrainConfig,
  runTrainingLoop,
  TrainingCancelledError,
  EvalResult,
  LabeledData,
  ModelRunner,
  OnnxClassifierRunner,
  ProximalTrainStep,
  proximalFeeds,
  RunnerOptions,
  sessionOptions,
  TrainConfig,
  TrainResult,
} from './trainer';

/** The hyper-parameter the task's learning rate feeds. */
const LEARNING_RATE = 'lr';

function checkNoOtherInputs(session: ort.InferenceSession, graph: string, fed: string[]): void {
  const known = new Set(fed);
  const extra = session.inputNames.filter((n) => !known.has(n));
  if (extra.length) throw new Error(`${graph} graph needs inputs the manifest does not describe: ${extra.join(', ')}`);
}

/**
 * Runs an imported model package: local training with its train-step graph,
 * evaluation with its inference graph.
 *
 * State: batch-norm running statistics are exchanged with the coordinator like
 * the weights (they are in the weights file and FedAvg averages them, as a
 * PyTorch state_dict would be). Optimizer state (momentum, Adam moments and
 * step) is carried from step to step within one call of `train` and starts
 * from the package's initial state at every call, i.e. every round: sites are
 * sampled afresh each round and a worker may restart, so nothing of a task
 * outlives its round on a site.
 *
 * FedProx: the package's second train step (`graphs.train_step_fedprox`,
 * built at import) adds mu (w - w_global) to the gradients; it is loaded the
 * first time a task trains with proximal_mu > 0.
 */
export class OnnxModelRunner implements ModelRunner {
  private readonly features: number;
  private readonly classes: number;
  private readonly width: number;
  private readonly exchanged: ParameterSpec[];
  /** Everything fed back from `<name>.next` after a step. */
  private readonly carried: string[];
  private readonly optimizerState: NamedTensors;
  private readonly proximal: ProximalTrainStep;

  private constructor(
    readonly manifest: ImportedModelManifest,
    private readonly inference: ort.InferenceSession,
    private readonly trainStep: ort.InferenceSession,
    initialState: NamedTensors | undefined,
    fedProxOnnx: Buffer | undefined,
    options: ort.InferenceSession.SessionOptions,
  ) {
    this.features = manifest.inputs.features.length;
    this.classes = manifest.classes.length;
    this.width = manifest.prediction.width;
    this.exchanged = exchangedTensors(manifest);
    this.carried = [...manifest.parameters.map((p) => p.name), ...manifest.state.map((s) => s.name)];
    this.optimizerState = initialState ?? new Map();
    this.proximal = new ProximalTrainStep(async () => {
      if (!fedProxOnnx) {
        throw new Error(`model "${manifest.name}" was imported before packages carried a FedProx train step; import it again to train it with proximal_mu > 0`);
      }
      const session = await ort.InferenceSession.create(fedProxOnnx, options);
      try {
        const inputs = [...trainStepInputs(manifest), PROXIMAL_MU_INPUT, ...manifest.parameters.map((p) => globalWeightInput(p.name))];
        checkSessionIO(session, 'FedProx train-step', inputs, [...this.carried.map((n) => `${n}.next`), 'loss']);
        checkNoOtherInputs(session, 'FedProx train-step', inputs);
      } catch (e) {
        await session.release();
        throw e;
      }
      return session;
    });
  }

  static async create(pkg: ModelPackage, opts: RunnerOptions = {}): Promise<OnnxModelRunner> {
    const manifest = pkg.manifest;
    if (!isImportedManifest(manifest)) throw new Error(`model "${manifest.name}" is not an imported model (${manifest.format}); run it with OnnxClassifierRunner`);
    const slots = manifest.state.filter((s) => s.kind === 'optimizer');
    for (const s of slots) {
      if (!pkg.initialState?.has(s.name)) throw new Error(`model package "${manifest.name}": no initial value for optimizer state "${s.name}"`);
    }
    const options = sessionOptions(opts);
    const exchanged = exchangedTensors(manifest).map((t) => t.name);
    const carried = [...manifest.parameters.map((p) => p.name), ...manifest.state.map((s) => s.name)];
    const hyper = manifest.hyper_parameters.map((h) => h.name);
    const inference = await ort.InferenceSession.create(pkg.inferenceOnnx, options);
    let trainStep: ort.InferenceSession | undefined;
    try {
      trainStep = await ort.InferenceSession.create(pkg.trainStepOnnx, options);
      const inferenceInputs = [...exchanged, 'x'];
      const trainInputs = trainStepInputs(manifest);
      checkSessionIO(inference, 'inference', inferenceInputs, [manifest.prediction.name]);
      checkSessionIO(trainStep, 'train-step', trainInputs, [...carried.map((n) => `${n}.next`), 'loss']);
      checkNoOtherInputs(inference, 'inference', inferenceInputs);
      checkNoOtherInputs(trainStep, 'train-step', trainInputs);
      if (!hyper.includes(LEARNING_RATE)) throw new Error(`train-step graph has no "${LEARNING_RATE}" input for the task's learning rate`);
    } catch (e) {
      await Promise.all([inference.release(), trainStep?.release()]);
      throw e;
    }
    return new OnnxModelRunner(manifest, inference, trainStep, pkg.initialState, pkg.trainStepFedProxOnnx, options);
  }

  private batchDims(m: number): number[] {
    return [m, ...this.manifest.inputs.shape];
  }

  async train(weights: NamedTensors, data: LabeledData, cfg: TrainConfig): Promise<TrainResult> {
    checkLabeledData(data, this.features, this.classes);
    checkWeights(this.manifest, weights);
    checkTrainConfig(cfg);
    if (cfg.signal?.aborted) throw new TrainingCancelledError(0);

    const F = this.features;
    const W = this.width;
    const feeds: Record<string, ort.Tensor> = {};
    for (const h of this.manifest.hyper_parameters) feeds[h.name] = new ort.Tensor('float32', Float32Array.from(h.default), h.shape);
    feeds[LEARNING_RATE] = new ort.Tensor('float32', Float32Array.of(cfg.learningRate), []);
    for (const t of this.exchanged) feeds[t.name] = new ort.Tensor('float32', weights.get(t.name)!.data, t.shape);
    // onnxruntime does not write into its inputs, so the package's initial state is fed as is.
    for (const s of this.manifest.state) {
      if (s.kind === 'optimizer') feeds[s.name] = new ort.Tensor('float32', this.optimizerState.get(s.name)!.data, s.shape);
    }
    const mu = cfg.proximalMu ?? 0;
    if (mu > 0) Object.assign(feeds, proximalFeeds(this.manifest.parameters, weights, mu));

    const { steps, meanLoss } = await runTrainingLoop({
      session: mu > 0 ? await this.proximal.get() : this.trainStep,
      feeds,
      carried: this.carried,
      data,
      cfg,
      xWidth: F,
      yWidth: W,
      xDims: (m) => this.batchDims(m),
      fillBatch: (order, start, m, xb, yb) => this.fillBatch(data, order, start, m, xb, yb),
      requireFiniteLoss: true,
    });
    const next: NamedTensors = new Map();
    for (const t of this.exchanged) next.set(t.name, { shape: [...t.shape], data: feeds[t.name].data as Float32Array });
    return { weights: next, meanLoss, steps, examples: data.n * cfg.epochs };
  }

  /** Features of rows order[start..start+m) into xb, their targets into yb. */
  private fillBatch(data: LabeledData, order: Int32Array, start: number, m: number, xb: Float32Array, yb: Float32Array): void {
    const F = this.features;
    const W = this.width;
    yb.fill(0, 0, m * W);
    for (let r = 0; r < m; r++) {
      const row = order[start + r];
      xb.set(data.x.subarray(row * F, row * F + F), r * F);
      // one logit: the target is the label itself; otherwise one-hot
      if (W === 1) yb[r] = data.labels[row];
      else yb[r * W + data.labels[row]] = 1;
    }
  }

  /** The package's loss (as the train step computes it) and argmax accuracy over all rows. */
  async evaluate(weights: NamedTensors, data: LabeledData): Promise<EvalResult> {
    checkLabeledData(data, this.features, this.classes);
    const z = await this.forward(weights, data.x, data.n);
    const W = this.width;
    const { n, labels } = data;
    let loss = 0;
    let correct = 0;
    for (let r = 0; r < n; r++) {
      const row = z.subarray(r * W, r * W + W);
      const label = labels[r];
      let best = 0;
      for (let c = 1; c < W; c++) if (row[c] > row[best]) best = c;
      const predicted = W === 1 ? (row[0] > 0 ? 1 : 0) : best;
      if (predicted === label) correct++;
      switch (this.manifest.loss) {
        case 'softmax_cross_entropy': {
          let sum = 0;
          for (let c = 0; c < W; c++) sum += Math.exp(row[c] - row[best]);
          loss += row[best] + Math.log(sum) - row[label];
          break;
        }
        case 'binary_cross_entropy_with_logits':
          for (let c = 0; c < W; c++) {
            const y = W === 1 ? label : c === label ? 1 : 0;
            const v = row[c];
            loss += Math.max(v, 0) - v * y + Math.log1p(Math.exp(-Math.abs(v)));
          }
          break;
        case 'mean_squared_error':
          for (let c = 0; c < W; c++) {
            const d = row[c] - (c === label ? 1 : 0);
            loss += d * d;
          }
          break;
      }
    }
    // cross-entropy is a mean over rows; the element-wise losses over every output, as in the train step
    const count = this.manifest.loss === 'softmax_cross_entropy' ? n : n * W;
    return { loss: loss / count, accuracy: correct / n, examples: n };
  }

  /**
   * Class scores, [n, classes] row-major: softmax probabilities for
   * cross-entropy, sigmoid probabilities for binary cross-entropy, the raw
   * outputs for mean squared error.
   */
  async predict(weights: NamedTensors, x: Float32Array, n: number): Promise<Float32Array> {
    const z = await this.forward(weights, x, n);
    const C = this.classes;
    const W = this.width;
    const out = new Float32Array(n * C);
    const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));
    for (let r = 0; r < n; r++) {
      const row = z.subarray(r * W, r * W + W);
      const dst = out.subarray(r * C, r * C + C);
      if (this.manifest.loss === 'softmax_cross_entropy') {
        let max = row[0];
        for (let c = 1; c < C; c++) max = Math.max(max, row[c]);
        let sum = 0;
        for (let c = 0; c < C; c++) sum += (dst[c] = Math.exp(row[c] - max));
        for (let c = 0; c < C; c++) dst[c] /= sum;
      } else if (this.manifest.loss === 'binary_cross_entropy_with_logits') {
        if (W === 1) {
          dst[1] = sigmoid(row[0]);
          dst[0] = 1 - dst[1];
        } else for (let c = 0; c < C; c++) dst[c] = sigmoid(row[c]);
      } else dst.set(row);
    }
    return out;
  }

  async release(): Promise<void> {
    await Promise.all([this.inference.release(), this.trainStep.release(), this.proximal.release()]);
  }

  /** The prediction output, [n, width] row-major. */
  private async forward(weights: NamedTensors, x: Float32Array, n: number): Promise<Float32Array> {
    checkWeights(this.manifest, weights);
    if (!Number.isSafeInteger(n) || n < 1) throw new Error(`inference: n must be a positive integer, got ${n}`);
    if (x.length !== n * this.features) throw new Error(`inference: x has ${x.length} values, expected n * ${this.features} = ${n * this.features}`);
    const feeds: Record<string, ort.Tensor> = { x: new ort.Tensor('float32', x, this.batchDims(n)) };
    for (const t of this.exchanged) feeds[t.name] = new ort.Tensor('float32', weights.get(t.name)!.data, t.shape);
    const out = await this.inference.run(feeds);
    const z = out[this.manifest.prediction.name];
    if (z.dims.length !== 2 || z.dims[0] !== n || z.dims[1] !== this.width) {
      throw new Error(`inference: output "${this.manifest.prediction.name}" is [${z.dims.join(', ')}], expected [${n}, ${this.width}]`);
    }
    return z.data as Float32Array;
  }
}

/** The plain train step's inputs: weights, state, the batch, hyper-parameters. */
function trainStepInputs(m: ImportedModelManifest): string[] {
  return [...m.parameters.map((p) => p.name), ...m.state.map((s) => s.name), 'x', 'y', ...m.hyper_parameters.map((h) => h.name)];
}

/** The runner for a package's format: the built-in classifier or an imported model. */
export async function createModelRunner(pkg: ModelPackage, opts: RunnerOptions = {}): Promise<ModelRunner> {
  return isImportedManifest(pkg.manifest) ? OnnxModelRunner.create(pkg, opts) : OnnxClassifierRunner.create(pkg, opts);
}
