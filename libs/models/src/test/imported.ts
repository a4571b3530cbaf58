import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { attr, floatTensor, OnnxGraphBuilder } from '../onnx';
import { OnnxImportSpec } from '../onnx-import';
import { uniform } from './autodiff-check';

/** Graphs exported by libs/models/test/fixtures/export_torch_models.py. */
export const FIXTURES = join(__dirname, '..', '..', 'test', 'fixtures');
export const torchMlp = (): Buffer => readFileSync(join(FIXTURES, 'torch_mlp.onnx'));
export const torchCnn = (): Buffer => readFileSync(join(FIXTURES, 'torch_cnn.onnx'));

/** Iris as the use case describes it: 4 measurements in cm, 3 species, published mean and std. */
export const IRIS_SPEC: OnnxImportSpec = {
  name: 'torch_mlp_iris',
  useCase: 'iris',
  featureNames: ['sepal-length', 'sepal-width', 'petal-length', 'petal-width'],
  classes: ['Iris-setosa', 'Iris-versicolor', 'Iris-virginica'],
  normalization: { mean: [5.84, 3.05, 3.76, 1.2], std: [0.83, 0.43, 1.76, 0.76] },
  loss: 'softmax_cross_entropy',
  optimizer: 'sgd',
  sourceFile: 'torch_mlp.onnx',
};

/** 8x8 digit images as 64 pixel columns, intensities 0..16. */
export const DIGITS_SPEC: OnnxImportSpec = {
  name: 'torch_cnn_digits',
  useCase: 'digits',
  featureNames: Array.from({ length: 64 }, (_, i) => `px${i}`),
  classes: Array.from({ length: 10 }, (_, i) => String(i)),
  normalization: { mean: new Array(64).fill(0), std: new Array(64).fill(16) },
  loss: 'softmax_cross_entropy',
  optimizer: 'sgd',
  sourceFile: 'torch_cnn.onnx',
};

/** x [N, 4] -> Gemm(6) -> BatchNormalization -> Relu -> Gemm(3) -> logits, weights as initializers. */
export function batchNormMlp(opset = 15): Buffer {
  const g = new OnnxGraphBuilder('bn_mlp', { opsetVersion: opset });
  g.input('input', 'float', ['batch', 4]);
  g.initializer('fc1.weight', floatTensor([6, 4], uniform(24, 1, -0.5, 0.5)));
  g.initializer('fc1.bias', floatTensor([6], uniform(6, 2, -0.1, 0.1)));
  g.initializer('bn.weight', floatTensor([6], new Float32Array(6).fill(1)));
  g.initializer('bn.bias', floatTensor([6], new Float32Array(6)));
  g.initializer('bn.running_mean', floatTensor([6], new Float32Array(6)));
  g.initializer('bn.running_var', floatTensor([6], new Float32Array(6).fill(1)));
  g.initializer('fc2.weight', floatTensor([3, 6], uniform(18, 3, -0.5, 0.5)));
  g.initializer('fc2.bias', floatTensor([3], new Float32Array(3)));
  const h = g.op('Gemm', ['input', 'fc1.weight', 'fc1.bias'], { transB: 1 });
  const bn = g.op('BatchNormalization', [h, 'bn.weight', 'bn.bias', 'bn.running_mean', 'bn.running_var'], { epsilon: attr.float(1e-5), momentum: attr.float(0.9) });
  g.node('Gemm', [g.op('Relu', [bn]), 'fc2.weight', 'fc2.bias'], ['logits'], { transB: 1 });
  g.output('logits', 'float', ['batch', 3]);
  return g.toBuffer();
}
