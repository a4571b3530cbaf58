/** @jest-environment ./libs/models/test/ort-environment.js */
import * as ort from 'onnxruntime-node';
import { attr, decodeModel, floatTensor, int64Tensor, OnnxGraphBuilder } from '../onnx';
import { ClassifierManifest } from '../manifest';
import { referenceTrainStep } from '../reference';
import { NamedTensors } from '../safetensors';
import { randomBatch, smallPackage } from '../test/fixtures';
import { compareWithFiniteDifferences, SESSION_OPTIONS, tensor, TrainStepSession, uniform } from '../test/autodiff-check';
import { buildTrainStep } from './train-step';
import { ADAM_STEP } from './optimizers';

/** The classifier of classifier-graphs.ts as an exported graph would hold it: weights as initializers. */
function mlpOnnx(m: ClassifierManifest, weights: NamedTensors, opset = 13): Buffer {
  const g = new OnnxGraphBuilder('mlp', { opsetVersion: opset });
  const F = m.inputs.features.length;
  g.input('features', 'float', ['batch', F]);
  for (const p of m.parameters) g.initializer(p.name, floatTensor(p.shape, weights.get(p.name)!.data));
  const mean = g.initializer('normalization.mean', floatTensor([F], m.normalization.mean));
  const std = g.initializer('normalization.std', floatTensor([F], m.normalization.std));
  let h = g.op('Div', [g.op('Sub', ['features', mean]), std]);
  const layers = m.parameters.length / 2;
  for (let i = 0; i < layers; i++) {
    h = g.op('Gemm', [h, `layers.${i}.weight`, `layers.${i}.bias`], { transB: 1 });
    if (i < layers - 1) h = g.op('Relu', [h]);
  }
  g.node('Identity', [h], ['logits']);
  g.output('logits', 'float', ['batch', m.classes.length]);
  return g.toBuffer();
}

/** prediction = x ⊙ w (w: [4]); with MSE against y the gradient is easy to state. */
function scaleOnnx(w: Float32Array): Buffer {
  const g = new OnnxGraphBuilder('scale');
  g.input('x', 'float', ['N', 4]);
  g.initializer('w', floatTensor([4], w));
  g.node('Mul', ['x', 'w'], ['prediction']);
  g.output('prediction', 'float', ['N', 4]);
  return g.toBuffer();
}

const f32 = (t: ort.Tensor) => t.data as Float32Array;
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);

describe('imported MLP against the plain TypeScript reference', () => {
  it.each([[[]], [[8]], [[6, 5]]])('hidden %j: one SGD step matches referenceTrainStep', async (hidden: number[]) => {
    const pkg = smallPackage(hidden);
    const m = pkg.manifest;
    const weights: NamedTensors = new Map([...pkg.initialWeights].map(([k, t], i) => [k, { shape: t.shape, data: t.data.map((v, j) => v + 0.05 * Math.sin(i + j)) }]));
    const s = await TrainStepSession.create(mlpOnnx(m, weights), {
      loss: 'softmax_cross_entropy',
      frozen: ['normalization.mean', 'normalization.std'],
    });
    try {
      expect(s.model.parameters).toEqual(m.parameters);
      expect(s.model.state).toEqual([]);
      for (const p of m.parameters) expect(s.model.initialWeights.get(p.name)!.data).toEqual(weights.get(p.name)!.data);
      for (const n of [1, 13, 64]) {
        const { x, y } = randomBatch(pkg, n, n);
        const out = await s.run(s.model.initialWeights, tensor(x, [n, 4]), tensor(y, [n, 3]), { lr: 0.3 });
        const ref = referenceTrainStep(m, weights, x, y, n, 0.3);
        expect(out.loss.dims).toEqual([]);
        expect(Math.abs(f32(out.loss)[0] - ref.loss)).toBeLessThanOrEqual(1e-5);
        for (const p of m.parameters) {
          expect(maxDiff(f32(out[`${p.name}.next`]), ref.params.get(p.name)!.data)).toBeLessThanOrEqual(1e-5);
          expect(maxDiff(f32(out[`${p.name}.next`]), weights.get(p.name)!.data)).toBeGreaterThan(1e-4);
        }
      }
    } finally {
      await s.release();
    }
  });

  it('the inference graph takes the weights as inputs and reproduces the imported graph', async () => {
    const pkg = smallPackage([5]);
    const onnx = mlpOnnx(pkg.manifest, pkg.initialWeights, 15);
    const model = buildTrainStep(onnx, { loss: 'softmax_cross_entropy', frozen: ['normalization.mean', 'normalization.std'] });
    const { x, n } = randomBatch(pkg, 7, 3);
    const original = await ort.InferenceSession.create(onnx, SESSION_OPTIONS);
    const imported = await ort.InferenceSession.create(model.inferenceOnnx, SESSION_OPTIONS);
    try {
      const feeds: Record<string, ort.Tensor> = { x: tensor(x, [n, 4]) };
      for (const [k, t] of model.initialWeights) feeds[k] = tensor(t.data, t.shape);
      const a = await original.run({ features: tensor(x, [n, 4]) });
      const b = await imported.run(feeds);
      expect(Array.from(f32(b.logits))).toEqual(Array.from(f32(a.logits)));
      expect(imported.inputNames).toEqual([...pkg.manifest.parameters.map((p) => p.name), 'x']);
    } finally {
      await Promise.all([original.release(), imported.release()]);
    }
  });
});

describe('losses', () => {
  const logits = uniform(4 * 3, 5, -2, 2);
  const onehot = Float32Array.from({ length: 12 }, (_, i) => (i % 3 === Math.floor(i / 3) % 3 ? 1 : 0));
  const identityModel = (shape: number[]) => {
    const g = new OnnxGraphBuilder('bias');
    g.input('x', 'float', ['N', shape[1]]);
    g.initializer('b', floatTensor([shape[1]], uniform(shape[1], 9)));
    g.node('Add', ['x', 'b'], ['logits']);
    g.output('logits', 'float');
    return g.toBuffer();
  };
  const z = (b: Float32Array) => logits.map((v, i) => v + b[i % 3]);

  async function lossOf(loss: Parameters<typeof buildTrainStep>[1]['loss'], y: Float32Array, hyper: Record<string, Float32Array | number> = {}, classWeights = false) {
    const s = await TrainStepSession.create(identityModel([4, 3]), { loss, classWeights });
    try {
      const out = await s.run(s.model.initialWeights, tensor(logits, [4, 3]), tensor(y, [4, 3]), { lr: 0, ...hyper });
      return { loss: f32(out.loss)[0], zs: z(s.model.initialWeights.get('b')!.data) };
    } finally {
      await s.release();
    }
  }

  it('softmax cross-entropy, with and without class weights, equals the float64 formula', async () => {
    const weights = Float32Array.of(0.5, 2, 1);
    const plain = await lossOf('softmax_cross_entropy', onehot);
    const weighted = await lossOf('softmax_cross_entropy', onehot, { class_weights: weights }, true);
    let sum = 0;
    let wsum = 0;
    let wtotal = 0;
    for (let r = 0; r < 4; r++) {
      const row = Array.from(plain.zs.subarray(r * 3, r * 3 + 3));
      const lse = Math.log(row.reduce((a, v) => a + Math.exp(v), 0));
      const c = onehot.subarray(r * 3, r * 3 + 3).indexOf(1);
      sum += lse - row[c];
      wsum += weights[c] * (lse - row[c]);
      wtotal += weights[c];
    }
    expect(plain.loss).toBeCloseTo(sum / 4, 5);
    expect(weighted.loss).toBeCloseTo(wsum / wtotal, 5);
  });

  it('binary cross-entropy with logits and mean squared error equal the float64 formulas', async () => {
    const y = uniform(12, 4, 0, 1);
    const bce = await lossOf('binary_cross_entropy_with_logits', y);
    const mse = await lossOf('mean_squared_error', y);
    let b = 0;
    let q = 0;
    bce.zs.forEach((v, i) => {
      const p = 1 / (1 + Math.exp(-v));
      b -= y[i] * Math.log(p) + (1 - y[i]) * Math.log(1 - p);
      q += (v - y[i]) ** 2;
    });
    expect(bce.loss).toBeCloseTo(b / 12, 5);
    expect(mse.loss).toBeCloseTo(q / 12, 5);
  });

  it.each([
    ['softmax_cross_entropy with class weights', 'softmax_cross_entropy', true],
    ['binary_cross_entropy_with_logits', 'binary_cross_entropy_with_logits', false],
  ] as const)('%s: gradients match finite differences', async (_n, loss, classWeights) => {
    const g = new OnnxGraphBuilder('linear');
    g.input('x', 'float', ['N', 3]);
    g.initializer('w', floatTensor([3, 3], uniform(9, 21)));
    g.node('MatMul', ['x', 'w'], ['logits']);
    g.output('logits', 'float');
    const y = loss === 'softmax_cross_entropy' ? onehot : uniform(12, 8, 0, 1);
    // class_weights default to ones; a weighted run is covered through the graph's own loss.
    const r = await compareWithFiniteDifferences(g.toBuffer(), { loss, classWeights }, tensor(logits, [4, 3]), tensor(y, [4, 3]));
    expect(r.largest).toBeGreaterThan(1e-3);
    expect(r.worst).toBeLessThanOrEqual(1);
  });
});

describe('optimizers against hand-computed updates', () => {
  const w0 = Float32Array.of(0.5, -1, 2, 0.25);
  const x = tensor(Float32Array.of(1, 2, -1, 0.5, -2, 1, 0.5, 3), [2, 4]);
  const y = tensor(Float32Array.of(0, 1, 0, 1, 1, 0, 1, 0), [2, 4]);
  /** d/dw of mean((x⊙w - y)²) over the 8 elements. */
  const gradient = (w: Float32Array) => {
    const xs = f32(x);
    const ys = f32(y);
    const g = new Float64Array(4);
    for (let i = 0; i < 8; i++) g[i % 4] += (2 * (xs[i] * w[i % 4] - ys[i]) * xs[i]) / 8;
    return g;
  };

  async function steps(optimizer: 'sgd' | 'sgd_momentum' | 'adam' | 'adamw', hyper: Record<string, number>, n: number, extra: { clipGradNorm?: boolean; fedProx?: boolean } = {}, feeds: Record<string, ort.Tensor> = {}) {
    const s = await TrainStepSession.create(scaleOnnx(w0), { loss: 'mean_squared_error', optimizer, ...extra });
    try {
      let weights = s.model.initialWeights;
      let state = s.model.initialState;
      const history: Float32Array[] = [];
      for (let k = 0; k < n; k++) {
        const out = await s.run(weights, x, y, hyper, state, feeds);
        weights = new Map([['w', { shape: [4], data: f32(out['w.next']) }]]);
        state = new Map(s.model.state.map((st) => [st.name, { shape: st.shape, data: f32(out[`${st.name}.next`]) }]));
        history.push(f32(out['w.next']));
      }
      return { history, state, model: s.model };
    } finally {
      await s.release();
    }
  }

  it('SGD with momentum (PyTorch convention, dampening 0)', async () => {
    const { history, model } = await steps('sgd_momentum', { lr: 0.1, momentum: 0.9 }, 3);
    expect(model.state.map((s) => s.name)).toEqual(['w.momentum']);
    const w = Float64Array.from(w0);
    const v = new Float64Array(4);
    for (let k = 0; k < 3; k++) {
      const g = gradient(Float32Array.from(w));
      for (let i = 0; i < 4; i++) {
        v[i] = 0.9 * v[i] + g[i];
        w[i] -= 0.1 * v[i];
      }
      expect(maxDiff(history[k], w)).toBeLessThanOrEqual(1e-6);
    }
  });

  it.each(['adam', 'adamw'] as const)('%s with bias correction and step count', async (optimizer) => {
    const hyper = { lr: 0.05, beta1: 0.8, beta2: 0.95, epsilon: 1e-6, weight_decay: 0.1 };
    const { history, state } = await steps(optimizer, hyper, 3);
    const w = Float64Array.from(w0);
    const m = new Float64Array(4);
    const v = new Float64Array(4);
    for (let t = 1; t <= 3; t++) {
      const g = gradient(Float32Array.from(w));
      for (let i = 0; i < 4; i++) {
        if (optimizer === 'adamw') w[i] *= 1 - hyper.lr * hyper.weight_decay;
        m[i] = hyper.beta1 * m[i] + (1 - hyper.beta1) * g[i];
        v[i] = hyper.beta2 * v[i] + (1 - hyper.beta2) * g[i] * g[i];
        const mHat = m[i] / (1 - hyper.beta1 ** t);
        const vHat = v[i] / (1 - hyper.beta2 ** t);
        w[i] -= (hyper.lr * mHat) / (Math.sqrt(vHat) + hyper.epsilon);
      }
      expect(maxDiff(history[t - 1], w)).toBeLessThanOrEqual(1e-5);
    }
    expect(state.get(ADAM_STEP)!.data[0]).toBe(3);
  });

  it('clips the global gradient norm, and leaves small gradients alone', async () => {
    const g = gradient(w0);
    const norm = Math.hypot(...g);
    const clipped = await steps('sgd', { lr: 1, max_grad_norm: norm / 4 }, 1, { clipGradNorm: true });
    const loose = await steps('sgd', { lr: 1, max_grad_norm: norm * 4 }, 1, { clipGradNorm: true });
    const scale = norm / 4 / (norm + 1e-6);
    expect(maxDiff(clipped.history[0], Array.from(w0, (w, i) => w - scale * g[i]))).toBeLessThanOrEqual(1e-6);
    expect(maxDiff(loose.history[0], Array.from(w0, (w, i) => w - g[i]))).toBeLessThanOrEqual(1e-6);
  });

  it('FedProx adds mu·(w - w_global) to the gradient; mu = 0 switches it off', async () => {
    const global = Float32Array.of(0, 0, 1, 1);
    const feeds = { 'w.global': tensor(global, [4]) };
    const g = gradient(w0);
    const prox = await steps('sgd', { lr: 0.5, mu: 0.3 }, 1, { fedProx: true }, feeds);
    const off = await steps('sgd', { lr: 0.5, mu: 0 }, 1, { fedProx: true }, feeds);
    expect(prox.model.trainStepInputs).toEqual(['w', 'x', 'y', 'lr', 'mu', 'w.global']);
    expect(maxDiff(prox.history[0], Array.from(w0, (w, i) => w - 0.5 * (g[i] + 0.3 * (w - global[i]))))).toBeLessThanOrEqual(1e-6);
    expect(maxDiff(off.history[0], Array.from(w0, (w, i) => w - 0.5 * g[i]))).toBeLessThanOrEqual(1e-6);
  });
});

describe('training-mode ops', () => {
  it('Dropout is the identity for inference and a scaled mask in the train step, with matching gradients', async () => {
    const g = new OnnxGraphBuilder('dropout');
    g.input('x', 'float', ['N', 200]);
    g.initializer('w', floatTensor([200], uniform(200, 3, 0.5, 1.5)));
    g.initializer('ratio', floatTensor([], [0.25]));
    g.node('Dropout', [g.op('Mul', ['x', 'w']), 'ratio'], ['prediction']);
    g.output('prediction', 'float');
    const model = buildTrainStep(g.toBuffer(), { loss: 'mean_squared_error', exposeGradients: true, dropoutSeed: 7 });
    expect(model.parameters.map((p) => p.name)).toEqual(['w']);
    const x = tensor(uniform(200, 4, 1, 2), [1, 200]);
    const inference = await ort.InferenceSession.create(model.inferenceOnnx, SESSION_OPTIONS);
    const w = model.initialWeights.get('w')!.data;
    const expected = f32(x).map((v, i) => v * w[i]);
    const out = await inference.run({ x, w: tensor(w, [200]) });
    expect(maxDiff(f32(out.prediction), expected)).toBeLessThanOrEqual(1e-6);
    await inference.release();

    const s = await TrainStepSession.create(g.toBuffer(), { loss: 'mean_squared_error', exposeGradients: true, dropoutSeed: 7 });
    try {
      const step = await s.run(s.model.initialWeights, x, tensor(new Float32Array(200), [1, 200]), { lr: 0 });
      const grad = f32(step['w.grad']);
      // loss = mean((m·x·w/(1-r))²): zero gradient where dropped, else 2·x²·w/(1-r)²/200
      const kept = grad.filter((v) => v !== 0).length;
      expect(kept).toBeGreaterThan(200 * 0.6);
      expect(kept).toBeLessThan(200 * 0.9);
      let lossSum = 0;
      grad.forEach((v, i) => {
        if (v === 0) return;
        const xi = f32(x)[i];
        expect(v).toBeCloseTo((2 * xi * xi * w[i]) / 0.75 ** 2 / 200, 5);
        lossSum += (xi * w[i] / 0.75) ** 2;
      });
      expect(f32(step.loss)[0]).toBeCloseTo(lossSum / 200, 5);
    } finally {
      await s.release();
    }
  });

  it('BatchNormalization carries running statistics as state, updated with the batch statistics', async () => {
    const g = new OnnxGraphBuilder('bn');
    g.input('x', 'float', ['N', 2]);
    g.initializer('bn.weight', floatTensor([2], [1, 2]));
    g.initializer('bn.bias', floatTensor([2], [0, 1]));
    g.initializer('bn.running_mean', floatTensor([2], [0.5, -0.5]));
    g.initializer('bn.running_var', floatTensor([2], [1, 2]));
    g.node('BatchNormalization', ['x', 'bn.weight', 'bn.bias', 'bn.running_mean', 'bn.running_var'], ['prediction'], { momentum: attr.float(0.9) });
    g.output('prediction', 'float');
    const s = await TrainStepSession.create(g.toBuffer(), { loss: 'mean_squared_error' });
    try {
      expect(s.model.parameters.map((p) => p.name)).toEqual(['bn.weight', 'bn.bias']);
      expect(s.model.state).toEqual([
        { name: 'bn.running_mean', shape: [2], kind: 'batch_norm' },
        { name: 'bn.running_var', shape: [2], kind: 'batch_norm' },
      ]);
      const xs = Float32Array.of(1, 2, 3, 6, 5, 1);
      const out = await s.run(s.model.initialWeights, tensor(xs, [3, 2]), tensor(new Float32Array(6), [3, 2]));
      // channel 0: 1, 3, 5 → mean 3, unbiased var 4; channel 1: 2, 6, 1 → mean 3, unbiased var 7
      expect(maxDiff(f32(out['bn.running_mean.next']), [0.9 * 0.5 + 0.1 * 3, 0.9 * -0.5 + 0.1 * 3])).toBeLessThanOrEqual(1e-6);
      expect(maxDiff(f32(out['bn.running_var.next']), [0.9 * 1 + 0.1 * 4, 0.9 * 2 + 0.1 * 7])).toBeLessThanOrEqual(1e-6);
    } finally {
      await s.release();
    }
  });
});

describe('import errors name what is wrong', () => {
  const base = (op: string, attributes: Record<string, number | number[]> = {}, opset = 13) => {
    const g = new OnnxGraphBuilder('bad', { opsetVersion: opset });
    g.input('x', 'float', ['N', 1, 4, 4]);
    g.initializer('w', floatTensor([2, 1, 3, 3], uniform(18, 1)));
    g.node(op, ['x', 'w'], ['out'], attributes, 'the_node');
    g.output('out', 'float');
    return g.toBuffer();
  };

  it('rejects an unsupported op at import, naming the op and the node', () => {
    expect(() => buildTrainStep(base('ConvTranspose'), { loss: 'mean_squared_error' })).toThrow('unsupported op ConvTranspose in node "the_node"');
  });

  it('rejects unsupported attributes and opsets', () => {
    expect(() => buildTrainStep(base('Conv', { group: 2 }), { loss: 'mean_squared_error' })).toThrow('node "the_node" (Conv): group=2 is not supported');
    expect(() => buildTrainStep(base('Conv', {}, 12), { loss: 'mean_squared_error' })).toThrow('opset 12 is not supported');
    expect(() => buildTrainStep(base('Conv', {}, 18), { loss: 'mean_squared_error' })).toThrow('opset 18 is not supported');
  });

  it('rejects bad options and outputs', () => {
    const onnx = base('Conv');
    expect(() => buildTrainStep(onnx, { loss: 'hinge' as never })).toThrow('unknown loss "hinge"');
    expect(() => buildTrainStep(onnx, { loss: 'mean_squared_error', optimizer: 'lbfgs' as never })).toThrow('unknown optimizer "lbfgs"');
    expect(() => buildTrainStep(onnx, { loss: 'mean_squared_error', output: 'nope' })).toThrow('output "nope" is not a graph output');
    expect(() => buildTrainStep(onnx, { loss: 'mean_squared_error', frozen: ['w'] })).toThrow('no trainable float initializers');
    expect(() => buildTrainStep(Buffer.from('not a model'), { loss: 'mean_squared_error' })).toThrow('onnx decode');

    const g = new OnnxGraphBuilder('softmax');
    g.input('x', 'float', ['N', 3]);
    g.initializer('w', floatTensor([3], [1, 2, 3]));
    g.node('Softmax', [g.op('Mul', ['x', 'w'])], ['probabilities']);
    g.output('probabilities', 'float');
    expect(() => buildTrainStep(g.toBuffer(), { loss: 'softmax_cross_entropy' })).toThrow('output "probabilities" is already a Softmax');
  });

  it('rejects a shape-only op on the gradient path', () => {
    const g = new OnnxGraphBuilder('gather');
    g.input('x', 'float', ['N', 3]);
    g.initializer('w', floatTensor([3], [1, 2, 3]));
    g.initializer('i', int64Tensor([1], [0]));
    g.node('Gather', [g.op('Mul', ['x', 'w']), 'i'], ['out'], { axis: 1 }, 'pick');
    g.output('out', 'float');
    expect(() => buildTrainStep(g.toBuffer(), { loss: 'mean_squared_error' })).toThrow('node "pick" (Gather) is on the gradient path');
  });
});

describe('decodeModel', () => {
  it('reads back what the builder wrote', () => {
    const g = new OnnxGraphBuilder('roundtrip', { opsetVersion: 15 });
    g.input('x', 'float', ['N', 3]);
    g.initializer('w', floatTensor([3, 2], [1, 2, 3, 4, 5, 6]));
    g.initializer('shape', int64Tensor([2], [-1, 2 ** 40]));
    g.node('Gemm', ['x', 'w'], ['y1'], { alpha: attr.float(0.5), transB: 0, pads: [1, -2], acts: attr.floats([1.5]), mode: 'x' }, 'gemm');
    g.output('y1', 'float', ['N', 2]);
    g.setMetadata('k', 'v');
    const m = decodeModel(g.toBuffer());
    expect(m.opsets.get('')).toBe(15);
    expect(m.metadata).toEqual({ k: 'v' });
    expect(m.graph.inputs).toEqual([{ name: 'x', elemType: 'float', shape: ['N', 3] }]);
    expect(m.graph.outputs).toEqual([{ name: 'y1', elemType: 'float', shape: ['N', 2] }]);
    expect(m.graph.initializers[0]).toEqual({ name: 'w', dataType: 'float', dims: [3, 2], data: Float32Array.of(1, 2, 3, 4, 5, 6) });
    expect(m.graph.initializers[1]).toEqual({ name: 'shape', dataType: 'int64', dims: [2], data: BigInt64Array.of(-1n, 2n ** 40n) });
    expect(m.graph.nodes[0]).toEqual({
      opType: 'Gemm',
      name: 'gemm',
      inputs: ['x', 'w'],
      outputs: ['y1'],
      attributes: [
        ['alpha', { type: 'float', value: 0.5 }],
        ['transB', { type: 'int', value: 0 }],
        ['pads', { type: 'ints', value: [1, -2] }],
        ['acts', { type: 'floats', value: [1.5] }],
        ['mode', { type: 'string', value: 'x' }],
      ],
    });
  });
});
