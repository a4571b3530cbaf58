/** @jest-environment ./libs/models/test/ort-environment.js */
import { attr, floatTensor, int64Tensor, OnnxGraphBuilder } from '../onnx';
import { compareWithFiniteDifferences, count, tensor, uniform } from '../test/autodiff-check';
import { LossKind } from './losses';

interface Case {
  name: string;
  xShape: number[];
  /** Builds the graph after `h = x ⊙ input_scale`; returns the prediction. */
  body: (g: OnnxGraphBuilder, h: string, w: (shape: number[], lo?: number, hi?: number) => string) => string;
  /** Shape of the prediction (the target has the same shape). */
  yShape: number[];
  loss?: LossKind;
  opset?: number;
  tolerance?: { eps?: number; atol?: number; rtol?: number };
}

/**
 * Every case starts with a trainable per-feature scale on x, so gradients
 * flowing back through the op's data input are checked too, not only those
 * of the op's own weights.
 */
function buildCase(c: Case, seed: number): Uint8Array {
  const g = new OnnxGraphBuilder(c.name, { opsetVersion: c.opset ?? 13 });
  g.input('input', 'float', ['N', ...c.xShape.slice(1)]);
  let k = 0;
  const w = (shape: number[], lo = -1, hi = 1) => g.initializer(`w${k}`, floatTensor(shape, uniform(count(shape), seed + 100 * ++k, lo, hi)));
  const scale = g.initializer('input_scale', floatTensor(c.xShape.slice(1), uniform(count(c.xShape.slice(1)), seed, 0.5, 1.5)));
  const h = g.op('Mul', ['input', scale]);
  const out = c.body(g, h, w);
  g.node('Identity', [out], ['prediction']);
  g.output('prediction', 'float');
  return g.toBuffer();
}

const gemm = (transA: number, transB: number, alpha = 1, beta = 1, cShape: number[] = [5]): Case => ({
  name: `Gemm transA=${transA} transB=${transB} alpha=${alpha} beta=${beta} C${JSON.stringify(cShape)}`,
  // A is the (possibly transposed) activation: M = 3 rows, K = 4.
  xShape: transA ? [4, 3] : [3, 4],
  yShape: [3, 5],
  body: (g, h, w) => g.op('Gemm', [h, w(transB ? [5, 4] : [4, 5]), w(cShape)], { transA, transB, alpha: attr.float(alpha), beta: attr.float(beta) }),
});

const elementwise = (op: string, wShape: number[], lo = -1, hi = 1): Case => ({
  name: `${op} with a ${JSON.stringify(wShape)} weight (broadcast)`,
  xShape: [3, 2, 4],
  yShape: [3, 2, 4],
  body: (g, h, w) => g.op(op, [h, w(wShape, lo, hi)]),
});

const unary = (op: string, attributes: Record<string, ReturnType<typeof attr.float> | number> = {}): Case => ({
  name: op,
  xShape: [4, 5],
  yShape: [4, 5],
  body: (g, h, w) => g.op(op, [g.op('Add', [h, w([5])])], attributes),
});

const CASES: Case[] = [
  gemm(0, 0),
  gemm(0, 1),
  gemm(1, 0, 0.5, 2),
  gemm(1, 1, 1.5, 0.25, [1, 5]),
  gemm(0, 1, 1, 1, [3, 5]),
  { name: 'Gemm without C', xShape: [3, 4], yShape: [3, 2], body: (g, h, w) => g.op('Gemm', [h, w([2, 4])], { transB: 1 }) },
  { name: 'MatMul 2-D', xShape: [3, 4], yShape: [3, 2], body: (g, h, w) => g.op('MatMul', [h, w([4, 2])]) },
  { name: 'MatMul 3-D by 2-D', xShape: [2, 3, 4], yShape: [2, 3, 2], body: (g, h, w) => g.op('MatMul', [h, w([4, 2])]) },
  { name: 'MatMul 2-D by batched 3-D', xShape: [3, 4], yShape: [2, 3, 2], body: (g, h, w) => g.op('MatMul', [h, w([2, 4, 2])]) },
  elementwise('Add', [4]),
  elementwise('Add', [2, 1]),
  elementwise('Sub', [1, 2, 4]),
  elementwise('Sub', []),
  elementwise('Mul', [2, 4]),
  elementwise('Mul', [2, 1]),
  elementwise('Div', [4], 1, 2),
  elementwise('Div', [2, 1], -2, -1),
  {
    name: 'Add, Sub, Mul, Div of two activations, a value used twice',
    xShape: [3, 4],
    yShape: [3, 4],
    body: (g, h, w) => {
      const a = g.op('Tanh', [g.op('Add', [h, w([4])])]);
      const b = g.op('Sigmoid', [g.op('Mul', [h, w([4])])]);
      const c = g.op('Mul', [g.op('Add', [a, b]), g.op('Sub', [a, b])]);
      return g.op('Div', [c, g.op('Add', [b, g.constant(floatTensor([], [1]))])]);
    },
  },
  {
    name: 'Div by an activation of lower rank',
    xShape: [3, 4],
    yShape: [3, 4],
    body: (g, h, w) => g.op('Div', [w([3, 4]), g.op('Add', [g.op('Sigmoid', [h]), g.constant(floatTensor([], [1]))])]),
  },
  unary('Relu'),
  unary('LeakyRelu', { alpha: attr.float(0.2) }),
  unary('Sigmoid'),
  unary('Tanh'),
  unary('Identity'),
  { ...unary('Softmax', { axis: 1 }), loss: 'mean_squared_error' },
  { ...unary('LogSoftmax', { axis: -1 }), loss: 'mean_squared_error' },
  {
    name: 'Softmax on the middle axis of a 3-D tensor',
    xShape: [2, 3, 4],
    yShape: [2, 3, 4],
    body: (g, h, w) => g.op('Softmax', [g.op('Add', [h, w([3, 4])])], { axis: 1 }),
  },
  {
    name: 'Flatten then Gemm',
    xShape: [2, 2, 3, 2],
    yShape: [2, 3],
    body: (g, h, w) => g.op('Gemm', [g.op('Flatten', [h], { axis: 1 }), w([3, 12]), w([3])], { transB: 1 }),
  },
  {
    name: 'Reshape with a constant shape, then MatMul',
    xShape: [2, 6],
    yShape: [2, 3, 4],
    body: (g, h, w) => g.op('MatMul', [g.op('Reshape', [h, g.initializer('shape', int64Tensor([3], [0, 3, 2]))]), w([2, 4])]),
  },
  {
    name: 'Conv 3x3, pads 1, with bias',
    xShape: [2, 2, 5, 5],
    yShape: [2, 3, 5, 5],
    body: (g, h, w) => g.op('Conv', [h, w([3, 2, 3, 3]), w([3])], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }),
  },
  {
    name: 'Conv stride 2, asymmetric pads, no bias, unread tail',
    xShape: [2, 2, 6, 5],
    yShape: [2, 3, 2, 3],
    body: (g, h, w) => g.op('Conv', [h, w([3, 2, 3, 2])], { strides: [2, 2], pads: [0, 1, 0, 0] }),
  },
  {
    name: 'Conv stride 2, pads 1: the last window reaches real inputs, not the end padding',
    xShape: [2, 2, 4, 4],
    yShape: [2, 2, 2, 2],
    body: (g, h, w) => g.op('Conv', [h, w([2, 2, 3, 3]), w([2])], { strides: [2, 2], pads: [1, 1, 1, 1] }),
  },
  {
    name: 'Conv dilation 2',
    xShape: [1, 2, 6, 6],
    yShape: [1, 2, 2, 4],
    body: (g, h, w) => g.op('Conv', [h, w([2, 2, 3, 2]), w([2])], { dilations: [2, 2] }),
  },
  {
    name: 'MaxPool 2x2 stride 2',
    xShape: [2, 2, 4, 4],
    yShape: [2, 2, 2, 2],
    body: (g, h, w) => g.op('MaxPool', [g.op('Add', [h, w([2, 4, 4])])], { kernel_shape: [2, 2], strides: [2, 2] }),
  },
  {
    name: 'MaxPool 3x3 stride 2 pads 1 (overlapping windows), ceil_mode',
    xShape: [2, 1, 6, 6],
    yShape: [2, 1, 4, 4],
    body: (g, h, w) => g.op('MaxPool', [g.op('Mul', [h, w([1, 6, 6])])], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], ceil_mode: 1 }),
  },
  {
    name: 'AveragePool 2x2 stride 2, unread tail',
    xShape: [2, 2, 5, 5],
    yShape: [2, 2, 2, 2],
    body: (g, h) => g.op('AveragePool', [h], { kernel_shape: [2, 2], strides: [2, 2] }),
  },
  {
    name: 'AveragePool 3x3 stride 2 pads 1, count_include_pad=0',
    xShape: [1, 2, 5, 5],
    yShape: [1, 2, 3, 3],
    body: (g, h) => g.op('AveragePool', [h], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] }),
  },
  {
    name: 'AveragePool 3x3 stride 2 pads 1 on an even size, count_include_pad=1',
    xShape: [2, 1, 4, 6],
    yShape: [2, 1, 2, 3],
    body: (g, h) => g.op('AveragePool', [h], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], count_include_pad: 1 }),
  },
  {
    name: 'AveragePool 3x3 stride 1 pads 1, count_include_pad=1',
    xShape: [1, 2, 4, 4],
    yShape: [1, 2, 4, 4],
    body: (g, h) => g.op('AveragePool', [h], { kernel_shape: [3, 3], pads: [1, 1, 1, 1], count_include_pad: 1 }),
  },
  {
    name: 'GlobalAveragePool',
    xShape: [2, 3, 3, 4],
    yShape: [2, 3, 1, 1],
    body: (g, h) => g.op('GlobalAveragePool', [h]),
  },
  {
    name: 'BatchNormalization (training statistics) on [N, C, H, W]',
    xShape: [3, 2, 2, 3],
    yShape: [3, 2, 2, 3],
    body: (g, h, w) =>
      g.op('Tanh', [g.op('BatchNormalization', [h, w([2], 0.5, 1.5), w([2]), w([2]), w([2], 0.5, 1)], { epsilon: attr.float(1e-3) })]),
  },
  {
    name: 'BatchNormalization on [N, C]',
    xShape: [5, 3],
    yShape: [5, 3],
    opset: 15,
    body: (g, h, w) => g.op('Sigmoid', [g.op('BatchNormalization', [h, w([3], 0.5, 1.5), w([3]), w([3]), w([3], 0.5, 1)])]),
  },
  {
    name: 'a small CNN at opset 17: Conv, Relu, MaxPool, Flatten, Gemm, LogSoftmax-free logits',
    xShape: [2, 1, 6, 6],
    yShape: [2, 3],
    opset: 17,
    loss: 'softmax_cross_entropy',
    body: (g, h, w) => {
      const c = g.op('Relu', [g.op('Conv', [h, w([2, 1, 3, 3]), w([2])], { pads: [1, 1, 1, 1] })]);
      const p = g.op('MaxPool', [c], { kernel_shape: [2, 2], strides: [2, 2] });
      return g.op('Gemm', [g.op('Flatten', [p]), w([3, 18]), w([3])], { transB: 1 });
    },
  },
];

describe('gradients of every supported op match central finite differences', () => {
  it.each(CASES.map((c, i) => [c.name, c, i] as const))('%s', async (_name, c, i) => {
    const onnx = buildCase(c, 10 + i);
    const x = tensor(uniform(count(c.xShape), 1000 + i), c.xShape);
    const loss = c.loss ?? 'mean_squared_error';
    let yData = uniform(count(c.yShape), 2000 + i);
    if (loss === 'softmax_cross_entropy') {
      const classes = c.yShape[c.yShape.length - 1];
      yData = new Float32Array(count(c.yShape));
      for (let r = 0; r < yData.length / classes; r++) yData[r * classes + (r % classes)] = 1;
    }
    const y = tensor(yData, c.yShape);
    const result = await compareWithFiniteDifferences(onnx, { loss }, x, y, c.tolerance);
    expect(result.largest).toBeGreaterThan(1e-3);
    if (result.worst > 1) throw new Error(`gradient mismatch at ${result.where}`);
  });
});
