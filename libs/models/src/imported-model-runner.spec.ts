/** @jest-environment ./libs/models/test/ort-environment.js */
import { join } from 'node:path';
import { bundledDataDir, getUseCase, readCsvFile, seededRandom, shuffleInPlace, toLabeledData } from '@fl/datasets';
import { ImportedModelManifest } from './manifest';
import { floatTensor, OnnxGraphBuilder } from './onnx';
import { createModelRunner, OnnxModelRunner } from './imported-model-runner';
import { importOnnxModel } from './onnx-import';
import { NamedTensors } from './safetensors';
import { tensor, TrainStepSession } from './test/autodiff-check';
import { maxAbsDiff, smallPackage } from './test/fixtures';
import { batchNormMlp, DIGITS_SPEC, IRIS_SPEC, torchCnn, torchMlp } from './test/imported';
import { LabeledData, OnnxClassifierRunner } from './trainer';

function iris(): LabeledData {
  const data = toLabeledData(readCsvFile(join(bundledDataDir(), 'iris.csv')), getUseCase('iris'));
  return { x: data.x, labels: data.labels, n: data.n };
}

function rows(data: LabeledData, pick: (r: number) => boolean): LabeledData {
  const idx = Array.from({ length: data.n }, (_, r) => r).filter(pick);
  const F = data.x.length / data.n;
  const x = new Float32Array(idx.length * F);
  idx.forEach((r, i) => x.set(data.x.subarray(r * F, r * F + F), i * F));
  return { x, labels: Int32Array.from(idx, (r) => data.labels[r]), n: idx.length };
}

/** Example-weighted mean of the sites' weights, as the coordinator's FedAvg computes it. */
function fedAvg(updates: { weights: NamedTensors; examples: number }[]): NamedTensors {
  const total = updates.reduce((a, u) => a + u.examples, 0);
  const out: NamedTensors = new Map();
  for (const [name, t] of updates[0].weights) {
    const sum = new Float32Array(t.data.length);
    for (const u of updates) {
      const d = u.weights.get(name)!.data;
      for (let i = 0; i < sum.length; i++) sum[i] += (d[i] * u.examples) / total;
    }
    out.set(name, { shape: [...t.shape], data: sum });
  }
  return out;
}

describe('OnnxModelRunner on torch_mlp.onnx imported for iris', () => {
  const data = iris();

  it.each(['sgd', 'adam'] as const)("%s: its first step is the gradient pass's train step run directly on normalised rows", async (optimizer) => {
    const pkg = importOnnxModel(torchMlp(), { ...IRIS_SPEC, optimizer });
    const m = pkg.manifest as ImportedModelManifest;
    const runner = await OnnxModelRunner.create(pkg);
    // the graph as exported, without the normalisation in front
    const direct = await TrainStepSession.create(torchMlp(), { loss: 'softmax_cross_entropy', optimizer });
    try {
      const n = 20;
      const sample = rows(data, (r) => r % 7 === 0 && r < 7 * n);
      const lr = 0.05;
      const result = await runner.train(pkg.initialWeights, sample, { epochs: 1, batchSize: 64, learningRate: lr, seed: 5 });
      expect(result.steps).toBe(1);

      // the runner's order of rows in its one batch
      const order = Int32Array.from({ length: n }, (_, i) => i);
      shuffleInPlace(order, seededRandom(5));
      const x = new Float32Array(n * 4);
      const y = new Float32Array(n * 3);
      order.forEach((row, r) => {
        for (let j = 0; j < 4; j++) x[r * 4 + j] = (sample.x[row * 4 + j] - m.normalization!.mean[j]) / m.normalization!.std[j];
        y[r * 3 + sample.labels[row]] = 1;
      });
      const out = await direct.run(direct.model.initialWeights, tensor(x, [n, 4]), tensor(y, [n, 3]), { lr });
      expect(result.meanLoss).toBeCloseTo((out.loss.data as Float32Array)[0], 5);
      for (const p of m.parameters) {
        const want = out[`${p.name}.next`].data as Float32Array;
        expect({ p: p.name, diff: maxAbsDiff(result.weights.get(p.name)!.data, want) <= 1e-6 }).toEqual({ p: p.name, diff: true });
        expect(maxAbsDiff(want, pkg.initialWeights.get(p.name)!.data)).toBeGreaterThan(1e-4);
      }
      // only the weights travel; the optimizer state stays on the site
      expect([...result.weights.keys()]).toEqual(m.parameters.map((p) => p.name));
    } finally {
      await Promise.all([runner.release(), direct.release()]);
    }
  });

  it('federated rounds over three sites reduce the loss on iris and reach 0.9 accuracy', async () => {
    const pkg = importOnnxModel(torchMlp(), { ...IRIS_SPEC, optimizer: 'sgd_momentum' });
    const runner = await createModelRunner(pkg);
    try {
      expect(runner).toBeInstanceOf(OnnxModelRunner);
      const sites = [0, 1, 2].map((s) => rows(data, (r) => r % 3 === s));
      let global = pkg.initialWeights;
      const before = await runner.evaluate(global, data);
      const losses = [before.loss];
      for (let round = 1; round <= 5; round++) {
        const updates = [];
        for (const [i, site] of sites.entries()) {
          const r = await runner.train(global, site, { epochs: 5, batchSize: 8, learningRate: 0.05, seed: round * 10 + i });
          updates.push({ weights: r.weights, examples: site.n });
        }
        global = fedAvg(updates);
        losses.push((await runner.evaluate(global, data)).loss);
      }
      const after = await runner.evaluate(global, data);
      expect(after.examples).toBe(150);
      expect(losses[losses.length - 1]).toBeLessThan(losses[0] / 3);
      expect(losses[1]).toBeLessThan(losses[0]);
      expect(after.accuracy).toBeGreaterThanOrEqual(0.9);
      const probabilities = await runner.predict(global, data.x, data.n);
      expect(probabilities.length).toBe(150 * 3);
      expect(probabilities[0] + probabilities[1] + probabilities[2]).toBeCloseTo(1, 5);
    } finally {
      await runner.release();
    }
  });

  it('starts every round from the initial optimizer state: the same call twice gives the same weights', async () => {
    const pkg = importOnnxModel(torchMlp(), { ...IRIS_SPEC, optimizer: 'adam' });
    const runner = await OnnxModelRunner.create(pkg);
    try {
      const cfg = { epochs: 2, batchSize: 16, learningRate: 0.01, seed: 3 };
      const a = await runner.train(pkg.initialWeights, data, cfg);
      const b = await runner.train(pkg.initialWeights, data, cfg);
      expect(a.steps).toBe(2 * Math.ceil(150 / 16));
      for (const [k, t] of a.weights) expect(b.weights.get(k)!.data).toEqual(t.data);
      expect([...pkg.initialState!.values()].every((t) => t.data.every((v) => v === 0))).toBe(true);
    } finally {
      await runner.release();
    }
  });

  it.each(['sgd', 'adam'] as const)("%s with FedProx: each step is the gradient pass's FedProx step, pulled towards the weights training started from", async (optimizer) => {
    const pkg = importOnnxModel(torchMlp(), { ...IRIS_SPEC, optimizer });
    const m = pkg.manifest as ImportedModelManifest;
    const runner = await OnnxModelRunner.create(pkg);
    const direct = await TrainStepSession.create(torchMlp(), { loss: 'softmax_cross_entropy', optimizer, fedProx: true });
    try {
      const n = 20;
      const sample = rows(data, (r) => r % 7 === 0 && r < 7 * n);
      const lr = 0.05;
      const mu = 2;
      // full batches: one step per epoch; three epochs, so that the proximal term (0 at the first step) acts
      const cfg = { epochs: 3, batchSize: 64, learningRate: lr, seed: 5, proximalMu: mu };
      const result = await runner.train(pkg.initialWeights, sample, cfg);
      const plain = await runner.train(pkg.initialWeights, sample, { ...cfg, proximalMu: 0 });

      const order = Int32Array.from({ length: n }, (_, i) => i);
      const rand = seededRandom(5);
      const globals = Object.fromEntries(m.parameters.map((p) => [`${p.name}.global`, tensor(pkg.initialWeights.get(p.name)!.data, p.shape)]));
      let weights = direct.model.initialWeights;
      let state = direct.model.initialState;
      for (let epoch = 0; epoch < cfg.epochs; epoch++) {
        shuffleInPlace(order, rand);
        const x = new Float32Array(n * 4);
        const y = new Float32Array(n * 3);
        order.forEach((row, r) => {
          for (let j = 0; j < 4; j++) x[r * 4 + j] = (sample.x[row * 4 + j] - m.normalization!.mean[j]) / m.normalization!.std[j];
          y[r * 3 + sample.labels[row]] = 1;
        });
        const out = await direct.run(weights, tensor(x, [n, 4]), tensor(y, [n, 3]), { lr, mu }, state, globals);
        weights = new Map(m.parameters.map((p) => [p.name, { shape: p.shape, data: out[`${p.name}.next`].data as Float32Array }]));
        state = new Map([...state].map(([k, t]) => [k, { shape: t.shape, data: out[`${k}.next`].data as Float32Array }]));
      }
      for (const p of m.parameters) {
        expect({ p: p.name, close: maxAbsDiff(result.weights.get(p.name)!.data, weights.get(p.name)!.data) <= 1e-5 }).toEqual({ p: p.name, close: true });
      }
      const distance = (w: NamedTensors) => Math.sqrt(m.parameters.reduce((a, p) => a + maxAbsDiff(w.get(p.name)!.data, pkg.initialWeights.get(p.name)!.data) ** 2, 0));
      expect(distance(result.weights)).toBeLessThan(distance(plain.weights));
    } finally {
      await Promise.all([runner.release(), direct.release()]);
    }
  });

  it('with FedProx, a larger proximal_mu keeps the local weights closer to the global ones', async () => {
    const pkg = importOnnxModel(torchMlp(), { ...IRIS_SPEC, optimizer: 'sgd_momentum' });
    const runner = await OnnxModelRunner.create(pkg);
    try {
      const distance = async (proximalMu: number) => {
        const r = await runner.train(pkg.initialWeights, data, { epochs: 5, batchSize: 16, learningRate: 0.05, seed: 4, proximalMu });
        let sq = 0;
        for (const [name, t] of pkg.initialWeights) {
          const w = r.weights.get(name)!.data;
          for (let i = 0; i < w.length; i++) sq += (w[i] - t.data[i]) ** 2;
        }
        return Math.sqrt(sq);
      };
      const distances = [];
      for (const mu of [0, 0.1, 1, 4]) distances.push(await distance(mu));
      for (let i = 1; i < distances.length; i++) expect(distances[i]).toBeLessThan(distances[i - 1]);
      expect(distances[3]).toBeLessThan(distances[0] / 2);
    } finally {
      await runner.release();
    }
  });

  it('a package imported before the FedProx step trains as before, and refuses proximal_mu > 0 saying what to do', async () => {
    const { trainStepFedProxOnnx: _, ...older } = importOnnxModel(torchMlp(), IRIS_SPEC);
    const runner = await OnnxModelRunner.create(older);
    try {
      const cfg = { epochs: 1, batchSize: 16, learningRate: 0.05, seed: 1 };
      await expect(runner.train(older.initialWeights, data, cfg)).resolves.toMatchObject({ steps: 10 });
      await expect(runner.train(older.initialWeights, data, { ...cfg, proximalMu: 0.1 })).rejects.toThrow(
        'was imported before packages carried a FedProx train step; import it again to train it with proximal_mu > 0',
      );
    } finally {
      await runner.release();
    }
  });

  it('evaluates with the loss of the package: mean squared error as the train step computes it', async () => {
    const mse = importOnnxModel(torchMlp(), { ...IRIS_SPEC, loss: 'mean_squared_error' });
    const runner = await OnnxModelRunner.create(mse);
    try {
      const sample = rows(data, (r) => r % 10 === 0);
      // lr tiny: the step's loss is the loss at the initial weights
      const step = await runner.train(mse.initialWeights, sample, { epochs: 1, batchSize: 64, learningRate: 1e-9, seed: 1 });
      const ev = await runner.evaluate(mse.initialWeights, sample);
      expect(ev.loss).toBeCloseTo(step.meanLoss, 5);
    } finally {
      await runner.release();
    }
  });

  it('refuses weights that are not the package\'s and data of the wrong width, naming what is wrong', async () => {
    const pkg = importOnnxModel(torchMlp(), IRIS_SPEC);
    const runner = await OnnxModelRunner.create(pkg);
    try {
      const partial = new Map([...pkg.initialWeights].slice(1));
      await expect(runner.train(partial, data, { epochs: 1, batchSize: 8, learningRate: 0.1, seed: 1 })).rejects.toThrow('weights: missing parameter "0.weight"');
      await expect(runner.evaluate(pkg.initialWeights, { x: new Float32Array(10), labels: new Int32Array(2), n: 2 })).rejects.toThrow(
        'data: x has 10 values, expected n * 4 = 8',
      );
      await expect(OnnxClassifierRunner.create(pkg)).rejects.toThrow(/is an imported model/);
    } finally {
      await runner.release();
    }
  });
});

describe('OnnxModelRunner, other graphs', () => {
  it('a batch-norm MLP: running statistics move in training, are sent back and used in evaluation', async () => {
    const pkg = importOnnxModel(batchNormMlp(), { ...IRIS_SPEC, optimizer: 'sgd_momentum' });
    const runner = await OnnxModelRunner.create(pkg);
    try {
      const data = iris();
      const before = await runner.evaluate(pkg.initialWeights, data);
      const r = await runner.train(pkg.initialWeights, data, { epochs: 5, batchSize: 16, learningRate: 0.05, seed: 2 });
      expect([...r.weights.keys()]).toEqual([...pkg.initialWeights.keys()]);
      expect(maxAbsDiff(r.weights.get('bn.running_mean')!.data, pkg.initialWeights.get('bn.running_mean')!.data)).toBeGreaterThan(1e-3);
      const after = await runner.evaluate(r.weights, data);
      expect(after.loss).toBeLessThan(before.loss);
      // evaluation reads the running statistics it is given
      const stale = new Map(r.weights).set('bn.running_var', pkg.initialWeights.get('bn.running_var')!);
      expect((await runner.evaluate(stale, data)).loss).not.toBeCloseTo(after.loss, 4);
    } finally {
      await runner.release();
    }
  });

  it('torch_cnn.onnx: 64 pixel columns reshaped to [N, 1, 8, 8] train and evaluate', async () => {
    const pkg = importOnnxModel(torchCnn(), DIGITS_SPEC);
    const runner = await OnnxModelRunner.create(pkg);
    try {
      const rand = seededRandom(4);
      const n = 40;
      const x = new Float32Array(n * 64);
      const labels = new Int32Array(n);
      // digit c lights up pixel row c % 8
      for (let r = 0; r < n; r++) {
        labels[r] = r % 10;
        for (let p = 0; p < 64; p++) x[r * 64 + p] = (Math.floor(p / 8) === labels[r] % 8 ? 12 : 0) + 4 * rand();
      }
      const before = await runner.evaluate(pkg.initialWeights, { x, labels, n });
      const r = await runner.train(pkg.initialWeights, { x, labels, n }, { epochs: 20, batchSize: 10, learningRate: 0.5, seed: 1 });
      const after = await runner.evaluate(r.weights, { x, labels, n });
      expect(after.loss).toBeLessThan(before.loss);
      expect(r.steps).toBe(80);
    } finally {
      await runner.release();
    }
  });

  it('one logit for two classes with binary cross-entropy: targets are the labels, the logit\'s sign the class', async () => {
    const g = new OnnxGraphBuilder('logistic');
    g.input('features', 'float', ['N', 4]);
    g.initializer('w', floatTensor([1, 4], new Float32Array(4)));
    g.initializer('b', floatTensor([1], new Float32Array(1)));
    g.node('Gemm', ['features', 'w', 'b'], ['logit'], { transB: 1 });
    g.output('logit', 'float', ['N', 1]);
    const spec = { ...IRIS_SPEC, classes: ['no', 'yes'], loss: 'binary_cross_entropy_with_logits' as const, normalization: null };
    const pkg = importOnnxModel(g.toBuffer(), spec);
    expect((pkg.manifest as ImportedModelManifest).prediction).toEqual({ name: 'logit', width: 1 });
    const runner = await OnnxModelRunner.create(pkg);
    try {
      const rand = seededRandom(8);
      const n = 60;
      const x = Float32Array.from({ length: n * 4 }, () => 2 * rand() - 1);
      const labels = Int32Array.from({ length: n }, (_, r) => (x[r * 4] + x[r * 4 + 2] > 0 ? 1 : 0));
      const before = await runner.evaluate(pkg.initialWeights, { x, labels, n });
      expect(before.loss).toBeCloseTo(Math.log(2), 5);
      const r = await runner.train(pkg.initialWeights, { x, labels, n }, { epochs: 30, batchSize: 10, learningRate: 0.5, seed: 1 });
      const after = await runner.evaluate(r.weights, { x, labels, n });
      expect(after.loss).toBeLessThan(before.loss / 2);
      expect(after.accuracy).toBeGreaterThan(0.9);
      const p = await runner.predict(r.weights, x.subarray(0, 4), 1);
      expect(p[0] + p[1]).toBeCloseTo(1, 6);
      expect(p[1] > 0.5 ? 1 : 0).toBe(labels[0]);
    } finally {
      await runner.release();
    }
  });

  it('createModelRunner runs the built-in classifier packages as before', async () => {
    const runner = await createModelRunner(smallPackage([4]));
    try {
      expect(runner).toBeInstanceOf(OnnxClassifierRunner);
    } finally {
      await runner.release();
    }
  });
});
