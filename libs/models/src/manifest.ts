import { NamedTensors } from './safetensors';

export const MODEL_PACKAGE_FORMAT = 'fl-model-package/1';

export interface ParameterSpec {
  name: string;
  shape: number[];
}

export interface Normalization {
  mean: number[];
  std: number[];
}

export interface TrainingDefaults {
  learning_rate: number;
  batch_size: number;
  local_epochs: number;
}

/** JSON-able description of a model package (manifest.json). */
export interface ModelManifest {
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

export interface ModelPackage {
  manifest: ModelManifest;
  inferenceOnnx: Buffer;
  trainStepOnnx: Buffer;
  initialWeights: NamedTensors;
}

/** Layer widths [F, ...hidden, C]. */
export function layerSizes(m: Pick<ModelManifest, 'inputs' | 'classes' | 'architecture'>): number[] {
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

/** Checks a parsed manifest.json; throws an Error naming the first problem. */
export function validateManifest(value: unknown): ModelManifest {
  const fail = (msg: string): never => {
    throw new Error(`model manifest: ${msg}`);
  };
  if (typeof value !== 'object' || value === null) return fail('must be a JSON object');
  const m = value as Partial<ModelManifest> & Record<string, unknown>;
  if (m.format !== MODEL_PACKAGE_FORMAT) fail(`format must be "${MODEL_PACKAGE_FORMAT}", got ${JSON.stringify(m.format)}`);
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
  const d = m.defaults;
  if (!d || !(Number.isFinite(d.learning_rate) && d.learning_rate > 0) || !isPositiveInt(d.batch_size) || !isPositiveInt(d.local_epochs)) {
    fail('defaults must have learning_rate > 0 and positive integer batch_size, local_epochs');
  }
  if (typeof m.graphs?.inference !== 'string' || typeof m.graphs.train_step !== 'string') fail('graphs.inference and graphs.train_step must be file names');
  if (typeof m.weights !== 'string') fail('weights must be a file name');

  const expected = mlpParameters(layerSizes(m as ModelManifest));
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
  return m as ModelManifest;
}

/** Checks that `weights` holds exactly the manifest's parameters with the right shapes. */
export function checkWeights(manifest: ModelManifest, weights: NamedTensors): void {
  for (const p of manifest.parameters) {
    const t = weights.get(p.name);
    if (!t) throw new Error(`weights: missing parameter "${p.name}"`);
    if (!(t.data instanceof Float32Array)) throw new Error(`weights: parameter "${p.name}" must be float32`);
    if (!sameShape(t.shape, p.shape)) {
      throw new Error(`weights: parameter "${p.name}" has shape [${t.shape.join(', ')}], manifest says [${p.shape.join(', ')}]`);
    }
    const count = p.shape.reduce((a, b) => a * b, 1);
    if (t.data.length !== count) throw new Error(`weights: parameter "${p.name}" has ${t.data.length} values, expected ${count}`);
  }
  if (weights.size !== manifest.parameters.length) {
    const known = new Set(manifest.parameters.map((p) => p.name));
    const extra = [...weights.keys()].filter((k) => !known.has(k));
    throw new Error(`weights: unexpected tensors ${extra.map((e) => `"${e}"`).join(', ')}`);
  }
}
