/**
 * An ONNX graph (e.g. exported by torch.onnx.export) as a model package the
 * platform trains federatedly: the use case's feature normalisation is put in
 * front of the graph, the gradient pass turns it into a train-step graph, and
 * the graph's initializers become the initial weights.
 */
import { createHash } from 'node:crypto';
import { buildTrainStep, LossKind, OptimizerKind, TrainableModel } from './autodiff';
import { OPTIMIZER_HYPER_PARAMETERS } from './autodiff/optimizers';
import { IMPORTED_PACKAGE_FORMAT, ImportedModelManifest, ModelPackage, Normalization, TrainingDefaults, validateManifest } from './manifest';
import { DecodedModel, decodeModel, floatTensor, OnnxGraphBuilder } from './onnx';
import { NamedTensors } from './safetensors';
import { copyNormalization } from './feature-statistics';

export interface OnnxImportSpec {
  /** Model name in the registry and the manifest. */
  name: string;
  /** Use case the graph is trained on; only named in error messages. */
  useCase: string;
  /** The model's inputs in order; one example's values are reshaped row-major to the graph's input shape. */
  featureNames: string[];
  classes: string[];
  /** Per feature; null when the graph takes the features as they are. */
  normalization: Normalization | null;
  loss: LossKind;
  optimizer: OptimizerKind;
  /** Learning rate default: the optimizer's own; batch size and epochs: 32 and 1 unless given. */
  defaults?: Partial<TrainingDefaults>;
  /** File name the graph was read from, recorded in the manifest. */
  sourceFile?: string;
}

/** Names the normalisation adds in front of the graph; frozen so that they are not trained. */
export const NORMALIZATION_MEAN = 'normalization.mean';
export const NORMALIZATION_STD = 'normalization.std';

/** An imported graph that does not fit the use case (input width, output width). */
export class ModelImportError extends Error {
  constructor(message: string) {
    super(`model import: ${message}`);
    this.name = 'ModelImportError';
  }
}

function fail(msg: string): never {
  throw new ModelImportError(msg);
}

const describeShape = (shape: readonly (number | string)[] | undefined) => (shape ? `[${shape.join(', ')}]` : 'of unknown rank');

/** The one input that is not an initializer, and one example's static shape. */
function exampleShape(model: DecodedModel, spec: OnnxImportSpec): { inputName: string; shape: number[] } {
  const initializers = new Set(model.graph.initializers.map((t) => t.name));
  const data = model.graph.inputs.filter((i) => !initializers.has(i.name));
  if (data.length !== 1) fail(`the graph must have exactly one data input, found ${data.length} (${data.map((i) => i.name).join(', ')})`);
  const input = data[0];
  const dims = input.shape;
  if (!dims || dims.length < 2) fail(`the graph's input "${input.name}" is ${describeShape(dims)}; it needs a batch dimension first, then one example's shape`);
  const example = dims!.slice(1);
  if (!example.every((d): d is number => typeof d === 'number' && d > 0)) {
    fail(`the graph's input "${input.name}" is ${describeShape(dims)}: only the first (batch) dimension may be dynamic; export with a fixed example shape`);
  }
  const width = (example as number[]).reduce((a, b) => a * b, 1);
  const F = spec.featureNames.length;
  if (width !== F) {
    fail(
      `the graph's input "${input.name}" is ${describeShape(dims)}, ${width} values per example, but use case '${spec.useCase}' has ${F} model inputs ` +
        `(${spec.featureNames.slice(0, 8).join(', ')}${F > 8 ? ', ...' : ''})`,
    );
  }
  return { inputName: input.name, shape: example as number[] };
}

/**
 * The same graph with (x - mean) / std in front of its data input. mean and std
 * are initializers shaped like one example, so they broadcast over the batch.
 */
function withNormalization(model: DecodedModel, inputName: string, shape: number[], norm: Normalization): Buffer {
  const { graph } = model;
  const taken = new Set<string>([...graph.inputs.map((i) => i.name), ...graph.initializers.map((t) => t.name), ...graph.nodes.flatMap((n) => n.outputs)]);
  for (const n of [NORMALIZATION_MEAN, NORMALIZATION_STD]) {
    if (taken.has(n)) fail(`the graph already uses the name "${n}", which the import uses for the feature normalisation`);
  }
  const fresh = (base: string) => {
    let name = base;
    for (let i = 1; taken.has(name); i++) name = `${base}_${i}`;
    return name;
  };
  // The train step names its batch input "x" and reserves that name: a graph
  // whose input is already "x" keeps it for the raw features and reads the
  // normalised ones under a new name; any other input name is kept for the
  // normalised features.
  const renamed = inputName === 'x';
  const raw = renamed ? 'x' : fresh('raw_features');
  const normalized = renamed ? fresh('x_normalized') : inputName;
  const opset = model.opsets.get('');
  const g = new OnnxGraphBuilder(graph.name || 'model', { opsetVersion: opset, irVersion: model.irVersion, producerName: model.producerName, producerVersion: model.producerVersion });
  const input = graph.inputs.find((i) => i.name === inputName)!;
  g.input(raw, 'float', input.shape);
  g.initializer(NORMALIZATION_MEAN, floatTensor(shape, Float32Array.from(norm.mean)));
  g.initializer(NORMALIZATION_STD, floatTensor(shape, Float32Array.from(norm.std)));
  for (const t of graph.initializers) g.initializer(t.name, t);
  const centred = g.op('Sub', [raw, NORMALIZATION_MEAN], {}, fresh('features_centred'));
  g.node('Div', [centred, NORMALIZATION_STD], [normalized], {}, 'normalization');
  const rename = (v: string) => (renamed && v === inputName ? normalized : v);
  for (const n of graph.nodes) g.node(n.opType, n.inputs.map(rename), n.outputs, Object.fromEntries(n.attributes), n.name);
  for (const o of graph.outputs) g.output(o.name, o.elemType, o.shape);
  for (const [k, v] of Object.entries(model.metadata)) g.setMetadata(k, v);
  return g.toBuffer();
}

function checkPrediction(model: TrainableModel, spec: OnnxImportSpec): number {
  const shape = model.target.shape;
  const classes = spec.classes.length;
  if (!shape || shape.length !== 2 || typeof shape[1] !== 'number') {
    fail(`the graph's output "${model.prediction}" is ${describeShape(shape)}; it must be [batch, classes] with a fixed number of classes`);
  }
  const width = shape![1] as number;
  const binaryLogit = spec.loss === 'binary_cross_entropy_with_logits' && width === 1 && classes === 2;
  if (width !== classes && !binaryLogit) {
    fail(
      `the graph's output "${model.prediction}" has ${width} values per example, but use case '${spec.useCase}' has ${classes} classes (${spec.classes.join(', ')})` +
        (classes === 2 && width === 1 ? '; a single logit needs --loss binary_cross_entropy_with_logits' : ''),
    );
  }
  return width;
}

/**
 * Builds an imported model package. Throws UnsupportedModelError (an op
 * outside the supported set, naming op and node; opset; reserved names) or
 * ModelImportError (the graph does not fit the use case); nothing else happens.
 */
export function importOnnxModel(onnx: Uint8Array, spec: OnnxImportSpec): ModelPackage {
  if (spec.normalization && (spec.normalization.mean.length !== spec.featureNames.length || spec.normalization.std.length !== spec.featureNames.length)) {
    fail(`the normalisation of use case '${spec.useCase}' has ${spec.normalization.mean.length} means and ${spec.normalization.std.length} stds for ${spec.featureNames.length} inputs`);
  }
  // Decoded once: imports may be hundreds of MiB.
  const decoded = decodeModel(onnx);
  const { inputName, shape } = exampleShape(decoded, spec);
  const graph = spec.normalization ? withNormalization(decoded, inputName, shape, spec.normalization) : onnx;
  const trainStepOptions = {
    loss: spec.loss,
    optimizer: spec.optimizer,
    frozen: spec.normalization ? [NORMALIZATION_MEAN, NORMALIZATION_STD] : [],
  };
  const model = buildTrainStep(graph, trainStepOptions);
  const width = checkPrediction(model, spec);
  // FedProx tasks train with this one: a second graph rather than mu = 0 in every task's step (the term costs ~30% of a 784-256-10 step).
  const fedProx = buildTrainStep(graph, { ...trainStepOptions, fedProx: true });

  const batchNorm = model.state.filter((s) => s.kind === 'batch_norm');
  const optimizerSlots = model.state.filter((s) => s.kind === 'optimizer');
  const manifest: ImportedModelManifest = {
    format: IMPORTED_PACKAGE_FORMAT,
    name: spec.name,
    task: 'classification',
    inputs: { name: 'x', features: [...spec.featureNames], shape },
    classes: [...spec.classes],
    normalization: spec.normalization ? copyNormalization(spec.normalization) : null,
    prediction: { name: model.prediction, width },
    loss: model.loss,
    optimizer: model.optimizer,
    parameters: model.parameters.map((p) => ({ name: p.name, shape: [...p.shape] })),
    state: model.state.map((s) => ({ name: s.name, shape: [...s.shape], kind: s.kind })),
    hyper_parameters: model.hyperParameters.map((h) => ({ name: h.name, shape: [...h.shape], default: Array.from(h.default) })),
    defaults: {
      learning_rate: OPTIMIZER_HYPER_PARAMETERS[model.optimizer].lr,
      batch_size: 32,
      local_epochs: 1,
      ...spec.defaults,
    },
    graphs: { inference: 'inference.onnx', train_step: 'train_step.onnx', train_step_fedprox: 'train_step_fedprox.onnx' },
    weights: 'weights.safetensors',
    ...(optimizerSlots.length ? { optimizer_state: 'optimizer_state.safetensors' } : {}),
    source: {
      file: spec.sourceFile ?? 'model.onnx',
      sha256: createHash('sha256').update(onnx).digest('hex'),
      opset: decoded.opsets.get('') ?? 0,
      producer: [decoded.producerName, decoded.producerVersion].filter(Boolean).join(' ') || 'unknown',
    },
  };
  try {
    validateManifest(manifest);
  } catch (e) {
    fail((e as Error).message);
  }

  const initialWeights: NamedTensors = new Map(model.initialWeights);
  for (const s of batchNorm) initialWeights.set(s.name, model.initialState.get(s.name)!);
  const initialState: NamedTensors = new Map(optimizerSlots.map((s) => [s.name, model.initialState.get(s.name)!]));
  return {
    manifest,
    inferenceOnnx: model.inferenceOnnx,
    trainStepOnnx: model.trainStepOnnx,
    trainStepFedProxOnnx: fedProx.trainStepOnnx,
    initialWeights,
    ...(optimizerSlots.length ? { initialState } : {}),
  };
}
