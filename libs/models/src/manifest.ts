import { LOSSES, LossKind } from './autodiff/losses';
import { OPTIMIZERS, OPTIMIZER_HYPER_PARAMETERS, OptimizerKind, optimizerState } from './autodiff/optimizers';
import { NamedTensors } from './safetensors';

/** The built-in dense softmax classifier (classifier-graphs.ts). */
export const MODEL_PACKAGE_FORMAT = 'fl-model-package/1';
/** A model imported from an ONNX graph, trained with the train step of the gradient pass. */
export const IMPORTED_PACKAGE_FORMAT = 'fl-model-package/2';
export const MODEL_PACKAGE_FORMATS = [MODEL_PACKAGE_FORMAT, IMPORTED_PACKAGE_FORMAT] as const;

export interface ParameterSpec {
  name: string;
  shape: number[];
}

export interface Normalization {
  mean: number[];
  std: number[];
  /** Set when the statistics are computed federatedly at the start of a task rather than fixed in the use case. */
  statistics?: FederatedStatistics;
}

/**
 * Standardisation statistics computed from every site's training rows before
 * round 1 (each site sends counts, sums and sums of squares, never rows).
 * Until a task has computed them, mean and std are placeholders (0 and 1) and
 * `computed` is absent; a trained model carries the statistics it was trained
 * with, so that it can be used for inference as is.
 */
export interface FederatedStatistics {
  method: 'federated';
  /** Per input: standardised (a number feature) or left as it is (a one-hot column). */
  standardize: boolean[];
  computed?: { task_id: number; examples: number; sites: number };
}

export interface TrainingDefaults {
  learning_rate: number;
  batch_size: number;
  local_epochs: number;
}

/** manifest.json of the built-in classifier package. */
export interface ClassifierManifest {
  format: typeof MODEL_PACKAGE_FORMAT;
  name: string;
  task: 'classification';
  inputs: { name: 'x'; features: string[] };
  classes: string[];
  parameters: ParameterSpec[];
  normalization: Normalization;
  architecture: { type: 'mlp'; hidden: number[] };
  loss: 'softmax_cross_entropy';
  defaults: TrainingDefaults;
  graphs: { inference: string; train_step: string };
  weights: string;
}

export interface StateEntry {
  name: string;
  shape: number[];
  /** batch_norm: running mean or variance, exchanged with the weights; optimizer: local to one round's training. */
  kind: 'batch_norm' | 'optimizer';
}

export interface HyperParameterEntry {
  name: string;
  shape: number[];
  /** Row-major values; a scalar is a one-element list. */
  default: number[];
}

/**
 * manifest.json of an imported model. Both graphs take the raw features of
 * the use case (`inputs.features`, in order) reshaped row-major to
 * [N, ...inputs.shape]; when `normalization` is set, (x - mean) / std is
 * already part of both graphs, as in the built-in classifier.
 */
export interface ImportedModelManifest {
  format: typeof IMPORTED_PACKAGE_FORMAT;
  name: string;
  task: 'classification';
  /** `shape` is one example's, without the batch dimension; its element count is the number of features. */
  inputs: { name: 'x'; features: string[]; shape: number[] };
  classes: string[];
  /** Per feature, in `inputs.features` order; null when the graph takes the features as they are. */
  normalization: Normalization | null;
  /** The inference-graph output the loss applies to, [N, width]: width = classes, or 1 for a binary logit. */
  prediction: { name: string; width: number };
  loss: LossKind;
  optimizer: OptimizerKind;
  /** Trainable weights (the graph's initializers). */
  parameters: ParameterSpec[];
  /** Train-step state: batch-norm statistics, then optimizer state. */
  state: StateEntry[];
  /** Train-step inputs besides weights, state and the batch; `lr` is the task's learning rate. */
  hyper_parameters: HyperParameterEntry[];
  defaults: TrainingDefaults;
  /**
   * `train_step_fedprox`: the same train step with FedProx's proximal term,
   * inputs `mu` and `<parameter>.global` added (a second graph, so that the
   * plain step pays nothing for it); absent in packages imported before it.
   */
  graphs: { inference: string; train_step: string; train_step_fedprox?: string };
  /** The tensors exchanged with the coordinator: `parameters`, then the batch_norm `state`. */
  weights: string;
  /** Initial values of the optimizer state (absent when the optimizer has none). */
  optimizer_state?: string;
  /** Where the graph came from. */
  source?: { file: string; sha256: string; opset: number; producer: string };
}

/** JSON-able description of a model package (manifest.json), either format. */
export type ModelManifest = ClassifierManifest | ImportedModelManifest;

export interface ModelPackage {
  manifest: ModelManifest;
  inferenceOnnx: Buffer;
  trainStepOnnx: Buffer;
  /** Imported models: the train step with FedProx's proximal term (the manifest's `graphs.train_step_fedprox`). */
  trainStepFedProxOnnx?: Buffer;
  /** The tensors exchanged with the coordinator (see the manifest's `weights`). */
  initialWeights: NamedTensors;
  /** Imported models with a stateful optimizer: its initial (zero) state. */
  initialState?: NamedTensors;
}

/** A package of the built-in classifier. */
export interface ClassifierPackage extends ModelPackage {
  manifest: ClassifierManifest;
}

export function isImportedManifest(m: ModelManifest): m is ImportedModelManifest {
  return m.format === IMPORTED_PACKAGE_FORMAT;
}

/** The tensors of the weights file, in order: what workers train and the coordinator aggregates. */
export function exchangedTensors(m: ModelManifest): ParameterSpec[] {
  if (!isImportedManifest(m)) return m.parameters;
  return [...m.parameters, ...m.state.filter((s) => s.kind === 'batch_norm').map((s) => ({ name: s.name, shape: s.shape }))];
}

/** Layer widths [F, ...hidden, C]. */
export function layerSizes(m: Pick<ClassifierManifest, 'inputs' | 'classes' | 'architecture'>): number[] {
  return [m.inputs.features.length, ...m.architecture.hidden, m.classes.length];
}

/** PyTorch-style parameter list: layers.i.weight [out, in], layers.i.bias [out]. */
export function mlpParameters(sizes: number[]): ParameterSpec[] {
  const params: ParameterSpec[] = [];
  for (let i = 0; i + 1 < sizes.length; i++) {
    params.push({ name: `layers.${i}.weight`, shape: [sizes[i + 1], sizes[i]] });
    params.push({ name: `layers.${i}.bias`, shape: [sizes[i + 1]] });
  }
  return params;
}

const isPositiveInt = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) > 0;
const isStringArray = (v: unknown): v is string[] => Array.isArray(v) && v.every((s) => typeof s === 'string');
const isFiniteArray = (v: unknown): v is number[] => Array.isArray(v) && v.every((s) => Number.isFinite(s));
const sameShape = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((d, i) => d === b[i]);

function validateClassifierManifest(value: object): ClassifierManifest {
  const m = value as Partial<ClassifierManifest> & Record<string, unknown>;
  if (typeof m.name !== 'string' || !m.name) fail('name must be a non-empty string');
  if (m.task !== 'classification') fail(`unsupported task ${JSON.stringify(m.task)}`);
  if (m.loss !== 'softmax_cross_entropy') fail(`unsupported loss ${JSON.stringify(m.loss)}`);
  if (m.inputs?.name !== 'x' || !isStringArray(m.inputs.features) || m.inputs.features.length === 0) {
    fail('inputs must be { name: "x", features: [non-empty list of names] }');
  }
  const features = m.inputs!.features.length;
  if (!isStringArray(m.classes) || m.classes.length < 2) fail('classes must list at least two class names');
  if (m.architecture?.type !== 'mlp' || !Array.isArray(m.architecture.hidden) || !m.architecture.hidden.every(isPositiveInt)) {
    fail('architecture must be { type: "mlp", hidden: [positive integers] }');
  }
  const norm = m.normalization;
  if (!norm || !isFiniteArray(norm.mean) || !isFiniteArray(norm.std) || norm.mean.length !== features || norm.std.length !== features) {
    fail(`normalization must have finite mean and std arrays of length ${features}`);
  }
  if (!norm!.std.every((s) => s > 0)) fail('normalization.std values must be > 0');
  validateStatistics(norm!, features);
  const d = m.defaults;
  if (!d || !(Number.isFinite(d.learning_rate) && d.learning_rate > 0) || !isPositiveInt(d.batch_size) || !isPositiveInt(d.local_epochs)) {
    fail('defaults must have learning_rate > 0 and positive integer batch_size, local_epochs');
  }
  if (typeof m.graphs?.inference !== 'string' || typeof m.graphs.train_step !== 'string') fail('graphs.inference and graphs.train_step must be file names');
  if (typeof m.weights !== 'string') fail('weights must be a file name');

  const expected = mlpParameters(layerSizes(m as ClassifierManifest));
  const params = m.parameters;
  if (!Array.isArray(params) || params.length !== expected.length) {
    fail(`parameters must list ${expected.length} entries for this architecture`);
  }
  expected.forEach((p, i) => {
    const got = params![i];
    if (got?.name !== p.name || !Array.isArray(got.shape) || !sameShape(got.shape, p.shape)) {
      fail(`parameter ${i} must be ${p.name} [${p.shape.join(', ')}], got ${JSON.stringify(got)}`);
    }
  });
  return m as ClassifierManifest;
}

function fail(msg: string): never {
  throw new Error(`model manifest: ${msg}`);
}

function validateStatistics(norm: Normalization, features: number): void {
  const st = norm.statistics;
  if (st === undefined) return;
  if (st?.method !== 'federated') fail(`normalization.statistics.method must be 'federated', got ${JSON.stringify(st?.method)}`);
  if (!Array.isArray(st.standardize) || st.standardize.length !== features || !st.standardize.every((b) => typeof b === 'boolean')) {
    fail(`normalization.statistics.standardize must list ${features} booleans, one per input`);
  }
  const c = st.computed;
  if (c !== undefined && !(isNonNegativeInt(c?.task_id) && isPositiveInt(c.examples) && isPositiveInt(c.sites))) {
    fail('normalization.statistics.computed must be { task_id, examples > 0, sites > 0 } (integers)');
  }
}

const isNonNegativeInt = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const isShape = (v: unknown): v is number[] => Array.isArray(v) && v.every(isNonNegativeInt);
const elementCount = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);
const isFileName = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v !== MANIFEST_FILE_NAME;
const MANIFEST_FILE_NAME = 'manifest.json';

function validateImportedManifest(value: object): ImportedModelManifest {
  const m = value as Partial<ImportedModelManifest> & Record<string, unknown>;
  if (typeof m.name !== 'string' || !m.name) fail('name must be a non-empty string');
  if (m.task !== 'classification') fail(`unsupported task ${JSON.stringify(m.task)}`);
  if (!LOSSES.includes(m.loss as LossKind)) fail(`unsupported loss ${JSON.stringify(m.loss)}; expected one of ${LOSSES.join(', ')}`);
  if (!OPTIMIZERS.includes(m.optimizer as OptimizerKind)) fail(`unsupported optimizer ${JSON.stringify(m.optimizer)}; expected one of ${OPTIMIZERS.join(', ')}`);
  const inputs = m.inputs;
  if (inputs?.name !== 'x' || !isStringArray(inputs.features) || inputs.features.length === 0) {
    fail('inputs must be { name: "x", features: [non-empty list of names], shape: [...] }');
  }
  const features = inputs!.features.length;
  if (new Set(inputs!.features).size !== features) fail('inputs.features must not repeat a name');
  if (!Array.isArray(inputs!.shape) || inputs!.shape.length === 0 || !inputs!.shape.every(isPositiveInt)) {
    fail(`inputs.shape must be one example's shape (positive integers, without the batch dimension), got ${JSON.stringify(inputs!.shape)}`);
  }
  if (elementCount(inputs!.shape) !== features) {
    fail(`inputs.shape [${inputs!.shape.join(', ')}] holds ${elementCount(inputs!.shape)} values per example, but inputs.features names ${features}`);
  }
  if (!isStringArray(m.classes) || m.classes.length < 2) fail('classes must list at least two class names');
  const classes = m.classes!.length;
  const norm = m.normalization;
  if (norm !== null) {
    if (!norm || !isFiniteArray(norm.mean) || !isFiniteArray(norm.std) || norm.mean.length !== features || norm.std.length !== features) {
      fail(`normalization must be null or have finite mean and std arrays of length ${features}`);
    }
    const bad = norm!.std.findIndex((s) => !(s > 0));
    if (bad >= 0) fail(`normalization.std of feature "${inputs!.features[bad]}" must be > 0, got ${norm!.std[bad]}`);
    validateStatistics(norm!, features);
  }
  const pred = m.prediction;
  if (typeof pred?.name !== 'string' || !pred.name || !isPositiveInt(pred.width)) fail('prediction must be { name: output name, width: positive integer }');
  const binaryLogit = m.loss === 'binary_cross_entropy_with_logits' && pred!.width === 1 && classes === 2;
  if (pred!.width !== classes && !binaryLogit) {
    fail(`prediction "${pred!.name}" has ${pred!.width} values per example but there are ${classes} classes` + (classes === 2 ? ' (a single logit needs loss binary_cross_entropy_with_logits)' : ''));
  }
  const d = m.defaults;
  if (!d || !(Number.isFinite(d.learning_rate) && d.learning_rate > 0) || !isPositiveInt(d.batch_size) || !isPositiveInt(d.local_epochs)) {
    fail('defaults must have learning_rate > 0 and positive integer batch_size, local_epochs');
  }
  if (!isFileName(m.graphs?.inference) || !isFileName(m.graphs!.train_step)) fail('graphs.inference and graphs.train_step must be file names');
  const fedProx = m.graphs!.train_step_fedprox;
  if (fedProx !== undefined && (!isFileName(fedProx) || fedProx === m.graphs!.train_step || fedProx === m.graphs!.inference)) {
    fail('graphs.train_step_fedprox must be a file name of its own when present');
  }
  if (!isFileName(m.weights)) fail('weights must be a file name');

  const names = new Set<string>();
  const checkEntry = (e: unknown, where: string): { name: string; shape: number[] } => {
    const entry = e as { name?: unknown; shape?: unknown } | null;
    if (typeof entry?.name !== 'string' || !entry.name || !isShape(entry.shape)) fail(`${where} must be { name, shape: [non-negative integers] }, got ${JSON.stringify(e)}`);
    if (names.has(entry!.name as string)) fail(`${where}: the name "${entry!.name}" is used twice`);
    names.add(entry!.name as string);
    return entry as { name: string; shape: number[] };
  };
  if (!Array.isArray(m.parameters) || m.parameters.length === 0) fail('parameters must list the trainable weights');
  m.parameters!.forEach((p, i) => checkEntry(p, `parameter ${i}`));
  if (!Array.isArray(m.state)) fail('state must be a list (empty when the train step has none)');
  m.state!.forEach((s, i) => {
    checkEntry(s, `state ${i}`);
    if (s.kind !== 'batch_norm' && s.kind !== 'optimizer') fail(`state ${i} ("${s.name}") must have kind "batch_norm" or "optimizer", got ${JSON.stringify(s.kind)}`);
  });
  const optimizer = m.optimizer as OptimizerKind;
  const expected = optimizerState(optimizer, m.parameters!);
  const got = m.state!.filter((s) => s.kind === 'optimizer');
  const described = (l: { name: string; shape: number[] }[]) => l.map((s) => `${s.name} [${s.shape.join(', ')}]`).join(', ') || 'none';
  if (got.length !== expected.length || expected.some((e, i) => e.name !== got[i].name || !sameShape(e.shape, got[i].shape))) {
    fail(`the optimizer state of ${optimizer} for these parameters is ${described(expected)}; the manifest lists ${described(got)}`);
  }
  if (expected.length > 0 && !isFileName(m.optimizer_state)) fail(`optimizer_state must name the file with the initial state of ${optimizer}`);
  if (expected.length === 0 && m.optimizer_state !== undefined) fail(`optimizer_state must be absent: ${optimizer} keeps no state`);

  if (!Array.isArray(m.hyper_parameters)) fail('hyper_parameters must be a list');
  const hyperNames = new Set<string>();
  m.hyper_parameters!.forEach((h, i) => {
    if (typeof h?.name !== 'string' || !h.name || !isShape(h.shape) || !isFiniteArray(h.default) || h.default.length !== elementCount(h.shape)) {
      fail(`hyper-parameter ${i} must be { name, shape, default: finite numbers, one per element }, got ${JSON.stringify(h)}`);
    }
    if (hyperNames.has(h.name) || names.has(h.name)) fail(`hyper-parameter "${h.name}" is declared twice or shadows a weight`);
    hyperNames.add(h.name);
  });
  const missing = Object.keys(OPTIMIZER_HYPER_PARAMETERS[optimizer]).filter((h) => !hyperNames.has(h));
  if (missing.length) fail(`hyper_parameters must include ${missing.join(', ')} for optimizer ${optimizer}`);
  return m as ImportedModelManifest;
}

/** Checks a parsed manifest.json of either format; throws an Error naming the first problem. */
export function validateManifest(value: unknown): ModelManifest {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return fail('must be a JSON object');
  const format = (value as { format?: unknown }).format;
  if (format === MODEL_PACKAGE_FORMAT) return validateClassifierManifest(value);
  if (format === IMPORTED_PACKAGE_FORMAT) return validateImportedManifest(value);
  return fail(`format must be one of ${MODEL_PACKAGE_FORMATS.map((f) => `"${f}"`).join(', ')}, got ${JSON.stringify(format)}`);
}
/** Checks that `weights` holds exactly the manifest's exchanged tensors with the right shapes. */
export function checkWeights(manifest: ModelManifest, weights: NamedTensors): void {
  checkTensors(exchangedTensors(manifest), weights, 'weights', 'parameter');
}

/** Checks that `tensors` holds exactly `specs`, float32, with the right shapes. */
export function checkTensors(specs: ParameterSpec[], tensors: NamedTensors, what: string, role: string): void {
  for (const p of specs) {
    const t = tensors.get(p.name);
    if (!t) throw new Error(`${what}: missing ${role} "${p.name}"`);
    if (!(t.data instanceof Float32Array)) throw new Error(`${what}: ${role} "${p.name}" must be float32`);
    if (!sameShape(t.shape, p.shape)) {
      throw new Error(`${what}: ${role} "${p.name}" has shape [${t.shape.join(', ')}], manifest says [${p.shape.join(', ')}]`);
    }
    const count = p.shape.reduce((a, b) => a * b, 1);
    if (t.data.length !== count) throw new Error(`${what}: ${role} "${p.name}" has ${t.data.length} values, expected ${count}`);
  }
  if (tensors.size !== specs.length) {
    const known = new Set(specs.map((p) => p.name));
    const extra = [...tensors.keys()].filter((k) => !known.has(k));
    throw new Error(`${what}: unexpected tensors ${extra.map((e) => `"${e}"`).join(', ')}`);
  }
}
