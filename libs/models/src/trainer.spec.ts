/** @jest-environment ./libs/models/test/ort-environment.js */
import { seededRandom, shuffleInPlace } from '@fl/datasets';
import { referenceTrainStep } from './reference';
import { NamedTensors } from './safetensors';
import { maxAbsDiff, randomBatch, separableData, smallPackage } from './test/fixtures';
import { OnnxClassifierRunner } from './trainer';

describe('OnnxClassifierRunner', () => {
  const pkg = smallPackage([8]);
  let runner: OnnxClassifierRunner;

  beforeAll(async () => {
    runner = await OnnxClassifierRunner.create(pkg);
  });
  afterAll(async () => {
    await runner.release();
  });

  it('learns a separable 4-feature, 3-class problem', async () => {
    const train = separableData(pkg, 300, 1);
    const test = separableData(pkg, 150, 2);
    const before = await runner.evaluate(pkg.initialWeights, test);
    const result = await runner.train(pkg.initialWeights, train, { epochs: 10, batchSize: 32, learningRate: 0.2, seed: 3 });
    const after = await runner.evaluate(result.weights, test);

    expect(result.steps).toBe(10 * Math.ceil(300 / 32));
    expect(result.examples).toBe(3000);
    expect(after.examples).toBe(150);
    expect(after.accuracy).toBeGreaterThan(0.97);
    expect(after.loss).toBeLessThan(before.loss / 4);
    expect(result.meanLoss).toBeLessThan(0.2);
    // the caller's weights are untouched
    expect(pkg.initialWeights.get('layers.0.bias')!.data.every((v) => v === 0)).toBe(true);
  });

  it('is deterministic in the seed', async () => {
    const data = separableData(pkg, 50, 4);
    const cfg = { epochs: 2, batchSize: 8, learningRate: 0.1, seed: 9 };
    const a = await runner.train(pkg.initialWeights, data, cfg);
    const b = await runner.train(pkg.initialWeights, data, cfg);
    const c = await runner.train(pkg.initialWeights, data, { ...cfg, seed: 10 });
    expect(a.weights.get('layers.1.weight')!.data).toEqual(b.weights.get('layers.1.weight')!.data);
    expect(a.meanLoss).toBe(b.meanLoss);
    expect(a.weights.get('layers.1.weight')!.data).not.toEqual(c.weights.get('layers.1.weight')!.data);
  });

  it('runs one step on all rows when batchSize >= n, like the reference', async () => {
    const { x, labels, y, n } = randomBatch(pkg, 10, 11);
    const result = await runner.train(pkg.initialWeights, { x, labels, n }, { epochs: 1, batchSize: 64, learningRate: 0.5, seed: 1 });
    const ref = referenceTrainStep(pkg.manifest, pkg.initialWeights, x, y, n, 0.5);
    expect(result.steps).toBe(1);
    expect(Math.abs(result.meanLoss - ref.loss)).toBeLessThan(1e-5);
    for (const [name, t] of ref.params) expect(maxAbsDiff(result.weights.get(name)!.data, t.data)).toBeLessThan(1e-5);

  });

  it('matches the reference step by step over shuffled minibatches with a partial last batch', async () => {
    const { x, labels, y, n } = randomBatch(pkg, 10, 13);
    const cfg = { epochs: 2, batchSize: 4, learningRate: 0.5, seed: 21 };
    const result = await runner.train(pkg.initialWeights, { x, labels, n }, cfg);
    expect(result.steps).toBe(6); // 4 + 4 + 2 per epoch

    const F = 4;
    const C = 3;
    const order = Int32Array.from({ length: n }, (_, i) => i);
    const rand = seededRandom(cfg.seed);
    let params: NamedTensors = pkg.initialWeights;
    let lossSum = 0;
    for (let epoch = 0; epoch < cfg.epochs; epoch++) {
      shuffleInPlace(order, rand);
      lossSum = 0;
      for (let start = 0; start < n; start += cfg.batchSize) {
        const rows = Array.from(order.subarray(start, start + cfg.batchSize));
        const xb = Float32Array.from(rows.flatMap((r) => Array.from(x.subarray(r * F, r * F + F))));
        const yb = Float32Array.from(rows.flatMap((r) => Array.from(y.subarray(r * C, r * C + C))));
        const step = referenceTrainStep(pkg.manifest, params, xb, yb, rows.length, cfg.learningRate);
        params = step.params;
        lossSum += step.loss * rows.length;
      }
    }
    expect(Math.abs(result.meanLoss - lossSum / n)).toBeLessThan(1e-5);
    for (const [name, t] of params) expect(maxAbsDiff(result.weights.get(name)!.data, t.data)).toBeLessThan(1e-5);
  });

  it('FedProx: matches the reference step by step, the proximal term pulling towards the weights training started from', async () => {
    const { x, labels, y, n } = randomBatch(pkg, 10, 17);
    // full batches: one step per epoch, on all rows in one order
    const cfg = { epochs: 3, batchSize: 64, learningRate: 0.5, seed: 2, proximalMu: 0.8 };
    const result = await runner.train(pkg.initialWeights, { x, labels, n }, cfg);
    const plain = await runner.train(pkg.initialWeights, { x, labels, n }, { ...cfg, proximalMu: 0 });
    const proximal = { mu: cfg.proximalMu, global: pkg.initialWeights };
    let params: NamedTensors = pkg.initialWeights;
    let loss = 0;
    for (let epoch = 0; epoch < cfg.epochs; epoch++) {
      const step = referenceTrainStep(pkg.manifest, params, x, y, n, cfg.learningRate, proximal);
      params = step.params;
      loss = step.loss;
    }
    // the reported loss is the cross-entropy, without the proximal penalty
    expect(Math.abs(result.meanLoss - loss)).toBeLessThan(1e-5);
    for (const [name, t] of params) {
      expect(maxAbsDiff(result.weights.get(name)!.data, t.data)).toBeLessThan(1e-5);
      // the first step has no pull (w = w_global), the later ones do
      expect(maxAbsDiff(result.weights.get(name)!.data, plain.weights.get(name)!.data)).toBeGreaterThan(1e-3);
    }
  });

  it('FedProx: a larger proximal_mu keeps the local weights closer to the global ones', async () => {
    const data = separableData(pkg, 120, 5);
    const distance = async (proximalMu: number) => {
      const r = await runner.train(pkg.initialWeights, data, { epochs: 5, batchSize: 16, learningRate: 0.2, seed: 4, proximalMu });
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
  });

  it('predicts probabilities and evaluates with a stable cross-entropy', async () => {
    const { x, labels, n } = randomBatch(pkg, 20, 12);
    const probs = await runner.predict(pkg.initialWeights, x, n);
    expect(probs).toBeInstanceOf(Float32Array);
    expect(probs.length).toBe(n * 3);
    let loss = 0;
    let correct = 0;
    for (let r = 0; r < n; r++) {
      const row = Array.from(probs.subarray(r * 3, r * 3 + 3));
      loss -= Math.log(row[labels[r]]);
      if (row.indexOf(Math.max(...row)) === labels[r]) correct++;
    }
    const ev = await runner.evaluate(pkg.initialWeights, { x, labels, n });
    expect(ev.loss).toBeCloseTo(loss / n, 5);
    expect(ev.accuracy).toBe(correct / n);
  });

  it('rejects bad inputs with clear errors', async () => {
    const data = separableData(pkg, 6, 1);
    const cfg = { epochs: 1, batchSize: 2, learningRate: 0.1, seed: 1 };
    const missing: NamedTensors = new Map(pkg.initialWeights);
    missing.delete('layers.0.weight');
    await expect(runner.train(missing, data, cfg)).rejects.toThrow('weights: missing parameter "layers.0.weight"');
    await expect(runner.train(pkg.initialWeights, { ...data, labels: Int32Array.of(0, 1, 2, 3, 0, 1) }, cfg)).rejects.toThrow(
      'label 3 at row 3 is outside [0, 3)',
    );
    await expect(runner.train(pkg.initialWeights, { ...data, n: 5 }, cfg)).rejects.toThrow('x has 24 values, expected n * 4 = 20');
    await expect(runner.train(pkg.initialWeights, data, { ...cfg, batchSize: 0 })).rejects.toThrow('batchSize must be a positive integer');
    await expect(runner.train(pkg.initialWeights, data, { ...cfg, proximalMu: -1 })).rejects.toThrow('proximalMu must be >= 0, got -1');
    await expect(runner.predict(pkg.initialWeights, new Float32Array(7), 2)).rejects.toThrow('x has 7 values');
  });

  it('refuses graphs that do not match the manifest', async () => {
    const other = smallPackage([]);
    await expect(OnnxClassifierRunner.create({ ...pkg, trainStepOnnx: other.trainStepOnnx })).rejects.toThrow(
      'train-step graph does not match the manifest: missing inputs [layers.1.weight, layers.1.bias]',
    );
  });
});
