/**
 * Import of an inference ONNX graph as a trainable model: the graph's float
 * initializers become the weights, and a reverse-mode pass over its nodes
 * yields a train-step graph (forward in training mode, loss, gradients,
 * optimizer update) that onnxruntime-node runs as an ordinary model.
 *
 * Train-step inputs, in order: weights, state (batch-norm running statistics,
 * then optimizer state), x, y, hyper-parameters, then `<weight>.global` when
 * FedProx is on. Outputs: `<weight>.next`, `<state>.next`, loss, then
 * `<weight>.grad` when gradients are exposed.
 */
import { Dim, NodeDef, OnnxGraphBuilder, OnnxTensor, decodeModel, DecodedModel } from '../onnx';
import { ParameterSpec } from '../manifest';
import { NamedTensors } from '../safetensors';
import { GraphEmitter, StaticShape } from './emitter';
import { emitLoss, LossKind, LOSSES } from './losses';
import { OP_RULES, OpRule, Saved, SUPPORTED_OPS, UnsupportedModelError } from './op-rules';
import { emitOptimizer, OptimizerKind, OPTIMIZERS, OPTIMIZER_HYPER_PARAMETERS, optimizerState } from './optimizers';

/** Opsets of imported graphs; the train-step graph itself uses TRAIN_STEP_OPSET. */
export const MIN_OPSET = 13;
export const MAX_OPSET = 17;
/** 16+ for ScatterElements with reduction (max-pool gradients). */
export const TRAIN_STEP_OPSET = 17;
const IR_VERSION = 8;

export interface TrainStepOptions {
  loss: LossKind;
  /** Default 'sgd'. */
  optimizer?: OptimizerKind;
  /** Graph output the loss applies to; default the first output. */
  output?: string;
  /** Softmax cross-entropy only: adds a `class_weights` [C] input. */
  classWeights?: boolean;
  /** Adds a `max_grad_norm` input; gradients are scaled to at most that global L2 norm. */
  clipGradNorm?: boolean;
  /** Adds `mu` and `<weight>.global` inputs and the gradient of mu/2·‖w - w_global‖². */
  fedProx?: boolean;
  /** Float initializers kept fixed (baked into the graph as constants). */
  frozen?: string[];
  /** Adds a `<weight>.grad` output per weight (the loss gradient, before FedProx and clipping). */
  exposeGradients?: boolean;
  /** Fixed seed for dropout masks (reproducible steps in tests). */
  dropoutSeed?: number;
}

export interface TensorSpec {
  name: string;
  /** undefined when the rank is unknown. */
  shape?: Dim[];
}

export interface StateSpec {
  name: string;
  shape: number[];
  /** batch_norm: running mean or variance; optimizer: momentum, moments, step count. */
  kind: 'batch_norm' | 'optimizer';
}

export interface HyperParameterSpec {
  name: string;
  shape: number[];
  default: Float32Array;
}

export interface TrainableModel {
  /** Inputs: weights, batch-norm state, x. Outputs: the imported graph's outputs. */
  inferenceOnnx: Buffer;
  trainStepOnnx: Buffer;
  trainStepOpset: number;
  /** Batch features, first dimension the batch. */
  input: TensorSpec;
  /** Batch targets, shaped like the prediction. */
  target: TensorSpec;
  /** Name of the output the loss applies to. */
  prediction: string;
  loss: LossKind;
  optimizer: OptimizerKind;
  parameters: ParameterSpec[];
  state: StateSpec[];
  hyperParameters: HyperParameterSpec[];
  /** The graph's initializers for `parameters`. */
  initialWeights: NamedTensors;
  /** Batch-norm statistics from the graph; optimizer state zeroed. */
  initialState: NamedTensors;
  trainStepInputs: string[];
  trainStepOutputs: string[];
}

const RESERVED = ['x', 'y', 'loss', 'lr', 'momentum', 'beta1', 'beta2', 'epsilon', 'weight_decay', 'max_grad_norm', 'mu', 'class_weights'];

function fail(msg: string): never {
  throw new UnsupportedModelError(`model import: ${msg}`);
}

function checkOptions(opts: TrainStepOptions): Required<Pick<TrainStepOptions, 'optimizer'>> {
  if (!LOSSES.includes(opts.loss)) fail(`unknown loss ${JSON.stringify(opts.loss)}; expected one of ${LOSSES.join(', ')}`);
  const optimizer = opts.optimizer ?? 'sgd';
  if (!OPTIMIZERS.includes(optimizer)) fail(`unknown optimizer ${JSON.stringify(optimizer)}; expected one of ${OPTIMIZERS.join(', ')}`);
  if (opts.classWeights && opts.loss !== 'softmax_cross_entropy') fail('class weights apply to softmax_cross_entropy only');
  if (opts.dropoutSeed !== undefined && !Number.isSafeInteger(opts.dropoutSeed)) fail(`dropoutSeed must be an integer, got ${opts.dropoutSeed}`);
  return { optimizer };
}

function checkOpset(model: DecodedModel): number {
  const opset = model.opsets.get('');
  if (opset === undefined) fail('the model imports no default (ai.onnx) operator set');
  if (opset < MIN_OPSET || opset > MAX_OPSET) fail(`opset ${opset} is not supported; export with opset_version between ${MIN_OPSET} and ${MAX_OPSET}`);
  return opset;
}

function checkOps(nodes: NodeDef[]): void {
  for (const n of nodes) {
    if (n.domain && n.domain !== 'ai.onnx') fail(`node "${n.name}" uses op ${n.domain}.${n.opType}; only the default ONNX domain is supported`);
    if (!OP_RULES[n.opType]) fail(`unsupported op ${n.opType} in node "${n.name}"; supported ops: ${SUPPORTED_OPS.join(', ')}`);
  }
}

const floatInit = (t: OnnxTensor): t is Extract<OnnxTensor, { dataType: 'float' }> => t.dataType === 'float';

interface Analysis {
  params: (OnnxTensor & { name: string; dataType: 'float' })[];
  batchNormStats: (OnnxTensor & { name: string; dataType: 'float' })[];
  constants: (OnnxTensor & { name: string })[];
  dataInput: { name: string; shape?: Dim[] };
}

function classifyInitializers(model: DecodedModel, frozen: Set<string>): Analysis {
  const { graph } = model;
  const initNames = new Set(graph.initializers.map((t) => t.name));
  const dataInputs = graph.inputs.filter((i) => !initNames.has(i.name));
  if (dataInputs.length !== 1) fail(`the graph must have exactly one data input, found ${dataInputs.length} (${dataInputs.map((i) => i.name).join(', ')})`);
  const dataInput = dataInputs[0];
  if (dataInput.elemType !== 'float') fail(`data input "${dataInput.name}" must be float, got ${dataInput.elemType}`);

  const differentiableUse = new Set<string>();
  const statUse = new Set<string>();
  for (const n of graph.nodes) {
    const rule = OP_RULES[n.opType];
    rule.differentiable.forEach((i) => n.inputs[i] && differentiableUse.add(n.inputs[i]));
    if (n.opType === 'BatchNormalization') [3, 4].forEach((i) => statUse.add(n.inputs[i]));
  }
  for (const f of frozen) if (!initNames.has(f)) fail(`frozen initializer "${f}" is not in the graph`);
  const a: Analysis = { params: [], batchNormStats: [], constants: [], dataInput };
  for (const t of graph.initializers) {
    if (!floatInit(t)) a.constants.push(t);
    else if (statUse.has(t.name)) {
      if (differentiableUse.has(t.name)) fail(`initializer "${t.name}" is both a batch-norm statistic and an operand`);
      a.batchNormStats.push(t);
    } else if (differentiableUse.has(t.name) && !frozen.has(t.name)) a.params.push(t);
    else a.constants.push(t);
  }
  if (a.params.length === 0) fail('the graph has no trainable float initializers');
  return a;
}

function staticInputShape(shape: Dim[] | undefined): StaticShape {
  return shape?.map((d, i) => (i === 0 || typeof d !== 'number' ? null : d));
}

function batchShape(shape: StaticShape): Dim[] | undefined {
  return shape?.map((d, i) => (i === 0 ? 'N' : d === null ? `d${i}` : d));
}

/** Runs every rule's shape inference and checks over the forward graph. */
function inferShapes(e: GraphEmitter, model: DecodedModel, a: Analysis): void {
  for (const t of model.graph.initializers) {
    e.shapes.set(t.name, t.dims);
    if (t.dataType === 'int64') e.intValues.set(t.name, Array.from(t.data, Number));
  }
  e.shapes.set(a.dataInput.name, staticInputShape(a.dataInput.shape));
  for (const n of model.graph.nodes) {
    const rule = OP_RULES[n.opType];
    const inputs = n.inputs.map((i) => (i ? e.shape(i) : undefined));
    rule.check?.(n, inputs);
    const outputs = rule.infer(e, n, inputs);
    n.outputs.forEach((o, i) => o && e.shapes.set(o, outputs[i]));
  }
}

function allValueNames(model: DecodedModel): Set<string> {
  const names = new Set<string>([...model.graph.inputs.map((i) => i.name), ...model.graph.initializers.map((t) => t.name)]);
  for (const n of model.graph.nodes) n.outputs.forEach((o) => names.add(o));
  return names;
}

function checkNames(names: Set<string>, params: string[], dataInput: string): void {
  for (const r of RESERVED) {
    if (names.has(r) && !(r === 'x' && dataInput === 'x')) fail(`the graph uses the name "${r}", which the train-step graph reserves; rename it before export`);
  }
  for (const p of params) {
    for (const suffix of ['.next', '.grad', '.global', '.momentum', '.adam_m', '.adam_v']) {
      if (names.has(p + suffix)) fail(`the graph uses the name "${p + suffix}", which the train-step graph reserves`);
    }
  }
}

function copyNode(g: OnnxGraphBuilder, n: NodeDef): void {
  g.node(n.opType, n.inputs, n.outputs, Object.fromEntries(n.attributes), n.name);
}

function buildInferenceGraph(model: DecodedModel, a: Analysis, opset: number): Buffer {
  const g = new OnnxGraphBuilder(`${model.graph.name || 'model'}.inference`, { opsetVersion: opset, irVersion: IR_VERSION, producerName: 'fl-models.autodiff' });
  for (const t of [...a.params, ...a.batchNormStats]) g.input(t.name, 'float', t.dims);
  const inputShape = batchShape(staticInputShape(a.dataInput.shape));
  g.input('x', 'float', inputShape);
  if (a.dataInput.name !== 'x') g.node('Identity', ['x'], [a.dataInput.name]);
  for (const t of a.constants) g.initializer(t.name, t);
  for (const n of model.graph.nodes) copyNode(g, n);
  for (const o of model.graph.outputs) g.output(o.name, o.elemType, o.shape?.map((d, i) => (i === 0 ? 'N' : d)));
  return g.toBuffer();
}

/** Whether each value depends on a trainable weight. */
function valuesNeedingGradients(nodes: NodeDef[], params: Set<string>): Set<string> {
  const live = new Set(params);
  for (const n of nodes) {
    const rule = OP_RULES[n.opType];
    const fed = n.inputs.some((v, i) => v && live.has(v) && rule.differentiable.includes(i));
    if (fed) live.add(n.outputs[0]);
    else if (!rule.backward && n.inputs.some((v) => live.has(v))) {
      fail(`node "${n.name}" (${n.opType}) is on the gradient path; ${n.opType} is supported only for shape computations`);
    }
  }
  return live;
}

/**
 * Turns an inference graph into a trainable model. Throws UnsupportedModelError
 * naming the problem (op and node, opset, option) when the graph cannot be trained.
 */
export function buildTrainStep(onnxBytes: Uint8Array, options: TrainStepOptions): TrainableModel {
  const { optimizer } = checkOptions(options);
  const model = decodeModel(onnxBytes);
  const opset = checkOpset(model);
  checkOps(model.graph.nodes);
  const frozen = new Set(options.frozen ?? []);
  const a = classifyInitializers(model, frozen);
  const prediction = options.output ?? model.graph.outputs[0]?.name;
  if (!prediction) fail('the graph has no outputs');
  if (!model.graph.outputs.some((o) => o.name === prediction)) fail(`output "${prediction}" is not a graph output (outputs: ${model.graph.outputs.map((o) => o.name).join(', ')})`);
  const producer = model.graph.nodes.find((n) => n.outputs[0] === prediction);
  if (options.loss === 'softmax_cross_entropy' && producer && (producer.opType === 'Softmax' || producer.opType === 'LogSoftmax')) {
    fail(`output "${prediction}" is already a ${producer.opType}; softmax_cross_entropy needs the logits before it`);
  }
  if (options.loss === 'binary_cross_entropy_with_logits' && producer?.opType === 'Sigmoid') {
    fail(`output "${prediction}" is already a Sigmoid; binary_cross_entropy_with_logits needs the logits before it`);
  }
  const names = allValueNames(model);
  checkNames(names, a.params.map((p) => p.name), a.dataInput.name);
  const live = valuesNeedingGradients(model.graph.nodes, new Set(a.params.map((p) => p.name)));
  if (!live.has(prediction)) fail(`output "${prediction}" does not depend on any trainable weight`);

  const g = new OnnxGraphBuilder(`${model.graph.name || 'model'}.train_step`, {
    opsetVersion: TRAIN_STEP_OPSET,
    irVersion: IR_VERSION,
    producerName: 'fl-models.autodiff',
  });
  const e = new GraphEmitter(g, names);
  inferShapes(e, model, a);
  const predictionShape = e.shape(prediction);

  // Graph inputs.
  const params: ParameterSpec[] = a.params.map((t) => ({ name: t.name, shape: [...t.dims] }));
  const optState = optimizerState(optimizer, params);
  const state: StateSpec[] = [
    ...a.batchNormStats.map((t): StateSpec => ({ name: t.name, shape: [...t.dims], kind: 'batch_norm' })),
    ...optState.map((s): StateSpec => ({ ...s, kind: 'optimizer' })),
  ];
  const hyper: HyperParameterSpec[] = Object.entries(OPTIMIZER_HYPER_PARAMETERS[optimizer]).map(([name, v]) => ({ name, shape: [], default: Float32Array.of(v) }));
  if (options.clipGradNorm) hyper.push({ name: 'max_grad_norm', shape: [], default: Float32Array.of(1) });
  if (options.fedProx) hyper.push({ name: 'mu', shape: [], default: Float32Array.of(0.01) });
  if (options.classWeights) {
    const classes = predictionShape?.[predictionShape.length - 1];
    if (typeof classes !== 'number') fail(`class weights need a known class count, but the last dimension of "${prediction}" is unknown`);
    hyper.push({ name: 'class_weights', shape: [classes], default: new Float32Array(classes).fill(1) });
  }
  for (const p of params) g.input(p.name, 'float', p.shape);
  for (const s of state) g.input(s.name, 'float', s.shape);
  const input: TensorSpec = { name: 'x', shape: batchShape(staticInputShape(a.dataInput.shape)) };
  const target: TensorSpec = { name: 'y', shape: batchShape(predictionShape) };
  g.input('x', 'float', input.shape);
  g.input('y', 'float', target.shape);
  for (const h of hyper) g.input(h.name, 'float', h.shape);
  if (options.fedProx) for (const p of params) g.input(`${p.name}.global`, 'float', p.shape);
  for (const t of a.constants) g.initializer(t.name, t);

  // Forward in training mode.
  if (a.dataInput.name !== 'x') g.node('Identity', ['x'], [a.dataInput.name]);
  const saved = new Map<NodeDef, Saved>();
  for (const n of model.graph.nodes) {
    const rule: OpRule = OP_RULES[n.opType];
    if (rule.forward) saved.set(n, rule.forward(e, n, { dropoutSeed: options.dropoutSeed }));
    else copyNode(g, n);
  }

  // Loss and backward pass.
  const loss = emitLoss(e, options.loss, prediction, 'y', options.classWeights ? 'class_weights' : undefined);
  g.node('Identity', [loss.loss], ['loss']);
  const pending = new Map<string, string[]>([[prediction, [loss.gradient]]]);
  const gradientOf = (v: string): string | undefined => {
    const parts = pending.get(v);
    if (!parts) return undefined;
    const total = parts.length === 1 ? parts[0] : e.op('Sum', parts);
    pending.set(v, [total]);
    return total;
  };
  for (let k = model.graph.nodes.length - 1; k >= 0; k--) {
    const n = model.graph.nodes[k];
    const rule = OP_RULES[n.opType];
    if (!rule.backward) continue;
    const needs = n.inputs.map((v, i) => !!v && live.has(v) && rule.differentiable.includes(i));
    if (!needs.some(Boolean)) continue;
    const grads = n.outputs.map((o) => (o ? gradientOf(o) : undefined));
    if (!grads[0]) continue;
    const inputGrads = rule.backward({ e, node: n, grads, needs, saved: saved.get(n) ?? {} });
    n.inputs.forEach((v, i) => {
      const gi = inputGrads[i];
      if (!needs[i] || !gi) return;
      pending.set(v, [...(pending.get(v) ?? []), gi]);
    });
  }
  const gradients = params.map((p) => ({ name: p.name, gradient: gradientOf(p.name) ?? e.op('ConstantOfShape', [e.ints(p.shape)]) }));
  emitOptimizer(e, optimizer, gradients, { fedProx: !!options.fedProx, clipGradNorm: !!options.clipGradNorm });

  const outputs: string[] = [...params.map((p) => `${p.name}.next`), ...state.map((s) => `${s.name}.next`), 'loss'];
  for (const p of params) g.output(`${p.name}.next`, 'float', p.shape);
  for (const s of state) g.output(`${s.name}.next`, 'float', s.shape);
  g.output('loss', 'float', []);
  if (options.exposeGradients) {
    for (const p of gradients) {
      g.node('Identity', [p.gradient], [`${p.name}.grad`]);
      g.output(`${p.name}.grad`, 'float', params.find((q) => q.name === p.name)!.shape);
      outputs.push(`${p.name}.grad`);
    }
  }

  const initialWeights: NamedTensors = new Map(a.params.map((t) => [t.name, { shape: [...t.dims], data: Float32Array.from(t.data) }]));
  const initialState: NamedTensors = new Map(a.batchNormStats.map((t) => [t.name, { shape: [...t.dims], data: Float32Array.from(t.data) }]));
  for (const s of optState) initialState.set(s.name, { shape: [...s.shape], data: new Float32Array(s.shape.reduce((x, y) => x * y, 1)) });

  return {
    inferenceOnnx: buildInferenceGraph(model, a, opset),
    trainStepOnnx: g.toBuffer(),
    trainStepOpset: TRAIN_STEP_OPSET,
    input,
    target,
    prediction,
    loss: options.loss,
    optimizer,
    parameters: params,
    state,
    hyperParameters: hyper,
    initialWeights,
    initialState,
    trainStepInputs: [...params.map((p) => p.name), ...state.map((s) => s.name), 'x', 'y', ...hyper.map((h) => h.name), ...(options.fedProx ? params.map((p) => `${p.name}.global`) : [])],
    trainStepOutputs: outputs,
  };
}
