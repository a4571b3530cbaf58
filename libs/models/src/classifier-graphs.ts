/**
 * ONNX graphs of the dense softmax classifier. The forward pass, written out:
 *   h0 = (x - mean) / std
 *   z_i = h_i · W_iᵀ + b_i        (Gemm, transB=1; W_i is [out, in])
 *   h_{i+1} = relu(z_i)           (hidden layers only)
 *   logits = z_{L-1}
 * The train-step graph appends mean softmax cross-entropy and its hand-written
 * backward pass followed by one plain SGD update; reference.ts is the same
 * computation in plain TypeScript. The FedProx variant adds the gradient of
 * (mu / 2) ||w - w_global||^2 to every parameter's.
 */
import { ClassifierManifest } from './manifest';
import { floatTensor, int64Tensor, OnnxGraphBuilder } from './onnx';

const FLOAT = 1; // TensorProto.DataType.FLOAT, for Cast

interface Forward {
  logits: string;
  /** Input of each Gemm layer (h_0 = normalised x). */
  layerInputs: string[];
  /** Pre-activation output of each Gemm layer. */
  preActivations: string[];
}

function declareParameters(g: OnnxGraphBuilder, m: ClassifierManifest): void {
  for (const p of m.parameters) g.input(p.name, 'float', p.shape);
}

function buildForward(g: OnnxGraphBuilder, m: ClassifierManifest): Forward {
  const features = m.inputs.features.length;
  const mean = g.initializer('normalization.mean', floatTensor([features], m.normalization.mean));
  const std = g.initializer('normalization.std', floatTensor([features], m.normalization.std));
  let h = g.op('Div', [g.op('Sub', ['x', mean]), std], {}, 'x_normalized');
  const layers = m.parameters.length / 2;
  const layerInputs: string[] = [];
  const preActivations: string[] = [];
  for (let i = 0; i < layers; i++) {
    layerInputs.push(h);
    const z = g.op('Gemm', [h, `layers.${i}.weight`, `layers.${i}.bias`], { transB: 1 }, i === layers - 1 ? 'logits' : `layers.${i}.z`);
    preActivations.push(z);
    if (i < layers - 1) h = g.op('Relu', [z], {}, `layers.${i}.h`);
  }
  return { logits: preActivations[layers - 1], layerInputs, preActivations };
}

/** Inputs: parameters, x [N, F] (raw features). Outputs: logits, probabilities [N, C]. */
export function buildInferenceGraph(m: ClassifierManifest): Buffer {
  const g = new OnnxGraphBuilder(`${m.name}.inference`);
  const classes = m.classes.length;
  declareParameters(g, m);
  g.input('x', 'float', ['N', m.inputs.features.length]);
  const { logits } = buildForward(g, m);
  g.op('Softmax', [logits], { axis: -1 }, 'probabilities');
  g.output('logits', 'float', ['N', classes]);
  g.output('probabilities', 'float', ['N', classes]);
  return g.toBuffer();
}

export interface TrainStepGraphOptions {
  /**
   * FedProx (Li et al. 2020): adds inputs `mu` (scalar) and `<param>.global`
   * (the round's global weights, fixed for the round) after `lr`, and
   * mu (w - w_global) to every gradient. The loss output stays the
   * cross-entropy. A separate graph, so that the plain step pays nothing.
   */
  fedProx?: boolean;
}

/** Names of the FedProx train step's extra inputs, as the gradient pass (autodiff) names them. */
export const PROXIMAL_MU_INPUT = 'mu';
export const globalWeightInput = (param: string) => `${param}.global`;

/**
 * Inputs: parameters, x [N, F] raw features, y [N, C] one-hot, lr scalar
 * (then mu and `<param>.global` with `fedProx`).
 * Outputs: `<param>.next` for every parameter (manifest order), then loss.
 */
export function buildTrainStepGraph(m: ClassifierManifest, options: TrainStepGraphOptions = {}): Buffer {
  const g = new OnnxGraphBuilder(`${m.name}.train_step${options.fedProx ? '_fedprox' : ''}`);
  const classes = m.classes.length;
  declareParameters(g, m);
  g.input('x', 'float', ['N', m.inputs.features.length]);
  g.input('y', 'float', ['N', classes]);
  g.input('lr', 'float', []);
  if (options.fedProx) {
    g.input(PROXIMAL_MU_INPUT, 'float', []);
    for (const p of m.parameters) g.input(globalWeightInput(p.name), 'float', p.shape);
  }
  const { logits, layerInputs, preActivations } = buildForward(g, m);

  const logProbs = g.op('LogSoftmax', [logits], { axis: -1 }, 'log_probabilities');
  const batchSize = g.op('Gather', [g.op('Shape', ['x']), g.constant(int64Tensor([], [0]))], { axis: 0 });
  const n = g.op('Cast', [batchSize], { to: FLOAT }, 'batch_size');
  const ySum = g.op('ReduceSum', [g.op('Mul', ['y', logProbs])], { keepdims: 0 });
  g.op('Div', [g.op('Neg', [ySum]), n], {}, 'loss');

  // dL/dlogits = (softmax - y) / N. Everything below is linear in it, so it is
  // scaled by -lr up front: each update then becomes a single fused Gemm
  // (W + deltaᵀ·h) instead of computing a gradient and a separate W - lr·dW.
  const scale = g.op('Div', [g.op('Neg', ['lr']), n]);
  let delta = g.op('Mul', [g.op('Sub', [g.op('Exp', [logProbs]), 'y']), scale], {}, 'logits.delta');
  // FedProx: w - lr (dL/dw + mu (w - w_global)) = [w - lr mu (w - w_global)] + (-lr dL/dw), so
  // the proximal pull goes into the term the fused update adds to.
  const pull = options.fedProx ? g.op('Mul', [g.op('Neg', ['lr']), PROXIMAL_MU_INPUT], {}, 'proximal.scale') : '';
  const base = (p: string) => (options.fedProx ? g.op('Add', [p, g.op('Mul', [g.op('Sub', [p, globalWeightInput(p)]), pull])], {}, `${p}.proximal`) : p);
  const batchAxis = g.constant(int64Tensor([1], [0]));
  const zero = layerInputs.length > 1 ? g.constant(floatTensor([], [0])) : '';
  for (let i = layerInputs.length - 1; i >= 0; i--) {
    const w = `layers.${i}.weight`;
    const b = `layers.${i}.bias`;
    g.op('Gemm', [delta, layerInputs[i], base(w)], { transA: 1 }, `${w}.next`);
    g.op('Add', [base(b), g.op('ReduceSum', [delta, batchAxis], { keepdims: 0 })], {}, `${b}.next`);
    if (i > 0) {
      const upstream = g.op('MatMul', [delta, w]);
      // ReLU derivative: 1 where the pre-activation is > 0, else 0.
      const mask = g.op('Cast', [g.op('Greater', [preActivations[i - 1], zero])], { to: FLOAT });
      delta = g.op('Mul', [upstream, mask], {}, `layers.${i - 1}.delta`);
    }
  }
  for (const p of m.parameters) g.output(`${p.name}.next`, 'float', p.shape);
  g.output('loss', 'float', []);
  return g.toBuffer();
}
