/** @jest-environment ./libs/models/test/ort-environment.js */
import { seededRandom } from '@fl/datasets';
import {
  addFeatureSums,
  decodeFeatureSums,
  encodeFeatureSums,
  featureSums,
  needsFederatedStatistics,
  standardization,
  withStandardization,
} from './feature-statistics';
import { validateManifest } from './manifest';
import { importOnnxModel } from './onnx-import';
import { replaceFloatInitializers } from './onnx/patch';
import { createModelRunner } from './imported-model-runner';
import { readModelPackage, modelPackageFiles } from './package-files';
import { smallPackage } from './test/fixtures';
import { IRIS_SPEC, torchMlp } from './test/imported';

function rows(n: number, F: number, seed: number, scale: number[], shift: number[]): Float32Array {
  const rand = seededRandom(seed);
  const x = new Float32Array(n * F);
  for (let i = 0; i < n; i++) for (let j = 0; j < F; j++) x[i * F + j] = shift[j] + scale[j] * (rand() - 0.5);
  return x;
}

/** Population mean and std per column, straight from the rows. */
function pooled(x: Float32Array, F: number): { mean: number[]; std: number[] } {
  const n = x.length / F;
  const mean = Array.from({ length: F }, (_, j) => {
    let s = 0;
    for (let i = 0; i < n; i++) s += x[i * F + j];
    return s / n;
  });
  const std = mean.map((m, j) => {
    let s = 0;
    for (let i = 0; i < n; i++) s += (x[i * F + j] - m) ** 2;
    return Math.sqrt(s / n);
  });
  return { mean, std };
}

const FEDERATED = { statistics: { method: 'federated' as const, standardize: [true, true, true, true] } };

describe('federated standardisation statistics', () => {
  const F = 4;
  const scale = [2, 40, 0.01, 5];
  const shift = [5, 800, 0.1, -3];
  const shards = [rows(30, F, 1, scale, shift), rows(55, F, 2, scale, shift), rows(7, F, 3, scale, shift)];

  it('adds up to the mean and population std of the pooled rows', () => {
    const total = addFeatureSums(shards.map((x) => decodeFeatureSums(encodeFeatureSums(featureSums(x, x.length / F, F)), x.length / F, F)));
    expect(total.count).toBe(92);
    const all = new Float32Array(92 * F);
    let o = 0;
    for (const s of shards) {
      all.set(s, o);
      o += s.length;
    }
    const want = pooled(all, F);
    const got = standardization(total, [true, true, true, true]);
    for (let j = 0; j < F; j++) {
      expect(got.mean[j]).toBeCloseTo(want.mean[j], 9);
      expect(Math.abs(got.std[j] - want.std[j]) / want.std[j]).toBeLessThan(1e-9);
    }
  });

  it('leaves inputs that are not standardised, and constant ones, at mean 0 / std 1 and mean / 1', () => {
    const x = new Float32Array([1, 7, 0, 7, 1, 7, 0, 7]); // 4 rows of [one-hot, constant]
    const got = standardization(featureSums(x, 4, 2), [false, true]);
    expect(got).toEqual({ mean: [0, 7], std: [1, 1] });
  });

  it('refuses sums that cannot come from a site, naming what is wrong', () => {
    const good = encodeFeatureSums(featureSums(shards[0], 30, F));
    expect(() => decodeFeatureSums(good, 30, F + 1)).toThrow(/do not fit 5 inputs/);
    expect(() => decodeFeatureSums(good, 0, F)).toThrow(/positive integer/);
    expect(() => decodeFeatureSums(undefined, 30, F)).toThrow(/no sums attached/);
    const nan = Buffer.from(good);
    nan.writeDoubleLE(NaN, 8);
    expect(() => decodeFeatureSums(nan, 30, F)).toThrow(/input 1 are not finite/);
    const impossible = Buffer.from(good);
    impossible.writeDoubleLE(0, 8 * F); // sum of squares 0 with a non-zero sum
    expect(() => decodeFeatureSums(impossible, 30, F)).toThrow(/input 0 cannot come from 30 rows/);
  });

  it('puts the statistics into the graphs of a built-in package: it predicts as one built with them fixed', async () => {
    const stats = { mean: [1.5, 820, 0.2, -2], std: [0.5, 12, 0.003, 1.7], examples: 92, sites: 3 };
    const pending = smallPackage([5], { normalization: { mean: [0, 0, 0, 0], std: [1, 1, 1, 1], ...FEDERATED } });
    expect(needsFederatedStatistics(pending)).toBe(true);
    const patched = withStandardization(pending, stats, 42);
    expect(needsFederatedStatistics(patched)).toBe(false);
    expect(patched.manifest.normalization).toEqual({ mean: stats.mean, std: stats.std, statistics: { ...FEDERATED.statistics, computed: { task_id: 42, examples: 92, sites: 3 } } });
    // The manifest survives a round trip through the package files.
    expect(readModelPackage(modelPackageFiles(patched)).manifest).toEqual(patched.manifest);

    const fixed = smallPackage([5], { normalization: { mean: stats.mean, std: stats.std } });
    const x = rows(6, F, 9, scale, shift);
    const [a, b] = await Promise.all([createModelRunner(patched), createModelRunner(fixed)]);
    const pa = await a.predict(pending.initialWeights, x, 6);
    const pb = await b.predict(fixed.initialWeights, x, 6);
    expect(Array.from(pa)).toEqual(Array.from(pb));
    // ... and trains as it does: the train-step graph got them too.
    const data = { x, labels: Int32Array.from([0, 1, 2, 0, 1, 2]), n: 6 };
    const cfg = { epochs: 1, batchSize: 3, learningRate: 0.1, seed: 1 };
    const ta = await a.train(pending.initialWeights, data, cfg);
    const tb = await b.train(fixed.initialWeights, data, cfg);
    expect(ta.meanLoss).toBeCloseTo(tb.meanLoss, 6);
    await Promise.all([a.release(), b.release()]);
  });

  it('puts the statistics into an imported graph, train step included', async () => {
    const stats = { mean: [5.8, 3.1, 3.7, 1.2], std: [0.8, 0.4, 1.7, 0.7], examples: 120, sites: 3 };
    const pending = importOnnxModel(torchMlp(), { ...IRIS_SPEC, normalization: { mean: [0, 0, 0, 0], std: [1, 1, 1, 1], ...FEDERATED } });
    const patched = withStandardization(pending, stats, 7);
    const fixed = importOnnxModel(torchMlp(), { ...IRIS_SPEC, normalization: { mean: stats.mean, std: stats.std } });
    const x = rows(5, F, 4, [1, 1, 2, 1], [5.8, 3, 3.7, 1.2]);
    const [a, b] = await Promise.all([createModelRunner(patched), createModelRunner(fixed)]);
    expect(Array.from(await a.predict(pending.initialWeights, x, 5))).toEqual(Array.from(await b.predict(fixed.initialWeights, x, 5)));
    const data = { x, labels: Int32Array.from([0, 1, 2, 1, 0]), n: 5 };
    const cfg = { epochs: 1, batchSize: 5, learningRate: 0.05, seed: 1 };
    const ta = await a.train(pending.initialWeights, data, cfg);
    const tb = await b.train(fixed.initialWeights, data, cfg);
    expect(ta.meanLoss).toBeCloseTo(tb.meanLoss, 6);
    // and the FedProx train step (two epochs: the proximal term is 0 in the first step)
    const prox = { ...cfg, epochs: 2, proximalMu: 0.5 };
    const pa = await a.train(pending.initialWeights, data, prox);
    const pb = await b.train(fixed.initialWeights, data, prox);
    expect(pa.meanLoss).toBeCloseTo(pb.meanLoss, 6);
    await Promise.all([a.release(), b.release()]);
  });

  it('refuses a package without federated statistics, and an initializer the graph lacks', () => {
    const fixed = smallPackage([]);
    expect(() => withStandardization(fixed, { mean: [0, 0, 0, 0], std: [1, 1, 1, 1], examples: 1, sites: 1 }, 1)).toThrow(/does not take federated statistics/);
    expect(() => replaceFloatInitializers(fixed.inferenceOnnx, new Map([['no.such', new Float32Array(1)]]))).toThrow(/no initializer "no.such"/);
    expect(() => replaceFloatInitializers(fixed.inferenceOnnx, new Map([['normalization.mean', new Float32Array(3)]]))).toThrow(/holds 4 values, 3 given/);
  });

  it('checks the statistics in a manifest', () => {
    const m = smallPackage([], { normalization: { mean: [0, 0, 0, 0], std: [1, 1, 1, 1], ...FEDERATED } }).manifest;
    expect(() => validateManifest({ ...m, normalization: { ...m.normalization, statistics: { method: 'federated', standardize: [true] } } })).toThrow(/4 booleans/);
    expect(() => validateManifest({ ...m, normalization: { ...m.normalization, statistics: { method: 'pooled', standardize: [true, true, true, true] } } })).toThrow(/must be 'federated'/);
  });
});
