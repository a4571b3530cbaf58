/**
 * Federated standardisation statistics: each site sums its training rows per
 * model input (count, sum, sum of squares; never a row), the coordinator adds
 * the sums up, and mean and std go into the package's graphs and manifest
 * before round 1.
 *
 * On the wire a site's sums are one little-endian float64 buffer: F sums, then
 * F sums of squares (F = the model's inputs); the count is in the payload.
 */
import { FederatedStatistics, ModelPackage, Normalization, validateManifest } from './manifest';
import { replaceFloatInitializers } from './onnx/patch';

/** Names of the normalisation initializers in both graphs of either package format. */
export const NORMALIZATION_INITIALIZERS = { mean: 'normalization.mean', std: 'normalization.std' } as const;

/** A site's sums: what it sends, and what the coordinator adds up. */
export interface FeatureSums {
  count: number;
  sum: Float64Array;
  sumSquares: Float64Array;
}

/** Below this relative spread an input counts as constant: it keeps std 1, so that it is never divided by ~0. */
const CONSTANT_SPREAD = 1e-6;

export class FeatureStatisticsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FeatureStatisticsError';
  }
}

export function copyNormalization(n: Normalization): Normalization {
  const out: Normalization = { mean: [...n.mean], std: [...n.std] };
  if (n.statistics) {
    out.statistics = { method: 'federated', standardize: [...n.statistics.standardize] };
    if (n.statistics.computed) out.statistics.computed = { ...n.statistics.computed };
  }
  return out;
}

/** True when the package's standardisation waits for statistics computed at the start of a task. */
export function needsFederatedStatistics(pkg: ModelPackage): boolean {
  const st = pkg.manifest.normalization?.statistics;
  return st !== undefined && st.computed === undefined;
}

/** Sums of one site's rows: x is row-major [n, features]. */
export function featureSums(x: Float32Array, n: number, features: number): FeatureSums {
  if (x.length !== n * features) throw new FeatureStatisticsError(`${x.length} values are not ${n} rows of ${features} inputs`);
  const sum = new Float64Array(features);
  const sumSquares = new Float64Array(features);
  for (let i = 0; i < n; i++) {
    const row = i * features;
    for (let j = 0; j < features; j++) {
      const v = x[row + j];
      sum[j] += v;
      sumSquares[j] += v * v;
    }
  }
  return { count: n, sum, sumSquares };
}

export function encodeFeatureSums(s: FeatureSums): Buffer {
  const F = s.sum.length;
  const buf = Buffer.alloc(16 * F);
  for (let j = 0; j < F; j++) {
    buf.writeDoubleLE(s.sum[j], 8 * j);
    buf.writeDoubleLE(s.sumSquares[j], 8 * (F + j));
  }
  return buf;
}

/** A site's buffer, checked: the right size for `features` inputs, finite, sums of squares consistent with the count. */
export function decodeFeatureSums(buf: Buffer | undefined, count: number, features: number): FeatureSums {
  if (!Number.isSafeInteger(count) || count <= 0) throw new FeatureStatisticsError(`the example count must be a positive integer, got ${count}`);
  if (!buf) throw new FeatureStatisticsError('no sums attached');
  if (buf.length !== 16 * features) throw new FeatureStatisticsError(`sums of ${buf.length} bytes do not fit ${features} inputs (expected ${16 * features})`);
  const sum = new Float64Array(features);
  const sumSquares = new Float64Array(features);
  for (let j = 0; j < features; j++) {
    sum[j] = buf.readDoubleLE(8 * j);
    sumSquares[j] = buf.readDoubleLE(8 * (features + j));
    if (!Number.isFinite(sum[j]) || !Number.isFinite(sumSquares[j])) throw new FeatureStatisticsError(`the sums of input ${j} are not finite`);
    // Cauchy-Schwarz: sum^2 <= count * sum of squares, up to rounding.
    if (sumSquares[j] < 0 || sum[j] * sum[j] > count * sumSquares[j] * (1 + 1e-9) + 1e-9) {
      throw new FeatureStatisticsError(`the sums of input ${j} cannot come from ${count} rows`);
    }
  }
  return { count, sum, sumSquares };
}

/** Adds sites' sums. */
export function addFeatureSums(parts: FeatureSums[]): FeatureSums {
  if (parts.length === 0) throw new FeatureStatisticsError('no site sent its sums');
  const F = parts[0].sum.length;
  const total: FeatureSums = { count: 0, sum: new Float64Array(F), sumSquares: new Float64Array(F) };
  for (const p of parts) {
    if (p.sum.length !== F) throw new FeatureStatisticsError(`sums over ${p.sum.length} inputs do not match ${F}`);
    total.count += p.count;
    for (let j = 0; j < F; j++) {
      total.sum[j] += p.sum[j];
      total.sumSquares[j] += p.sumSquares[j];
    }
  }
  return total;
}

/**
 * Mean and (population) standard deviation per input from the added sums; an
 * input marked not standardised keeps mean 0 and std 1, and so does one that
 * is constant over all sites' rows.
 */
export function standardization(total: FeatureSums, standardize: readonly boolean[]): { mean: number[]; std: number[] } {
  const F = total.sum.length;
  if (standardize.length !== F) throw new FeatureStatisticsError(`${standardize.length} flags for ${F} inputs`);
  const mean: number[] = [];
  const std: number[] = [];
  for (let j = 0; j < F; j++) {
    if (!standardize[j]) {
      mean.push(0);
      std.push(1);
      continue;
    }
    const m = total.sum[j] / total.count;
    const variance = Math.max(0, total.sumSquares[j] / total.count - m * m);
    const s = Math.sqrt(variance);
    mean.push(m);
    std.push(s > CONSTANT_SPREAD * Math.max(1, Math.abs(m)) ? s : 1);
  }
  return { mean, std };
}

/** The federated statistics a task computed, as stored with the task. */
export interface ComputedStandardization {
  mean: number[];
  std: number[];
  examples: number;
  sites: number;
}

/**
 * The package with the task's statistics in both graphs and in the manifest
 * (`statistics.computed` names the task), so that the model trained with them
 * can be used for inference as is.
 */
export function withStandardization(pkg: ModelPackage, stats: ComputedStandardization, taskId: number): ModelPackage {
  const norm = pkg.manifest.normalization;
  if (!norm?.statistics) throw new FeatureStatisticsError(`model '${pkg.manifest.name}' does not take federated statistics`);
  const F = norm.mean.length;
  if (stats.mean.length !== F || stats.std.length !== F) throw new FeatureStatisticsError(`statistics for ${stats.mean.length} inputs do not fit the model's ${F}`);
  const values = new Map([
    [NORMALIZATION_INITIALIZERS.mean, Float32Array.from(stats.mean)],
    [NORMALIZATION_INITIALIZERS.std, Float32Array.from(stats.std)],
  ]);
  const statistics: FederatedStatistics = {
    method: 'federated',
    standardize: [...norm.statistics.standardize],
    computed: { task_id: taskId, examples: stats.examples, sites: stats.sites },
  };
  const manifest = validateManifest({ ...pkg.manifest, normalization: { mean: [...stats.mean], std: [...stats.std], statistics } });
  return {
    ...pkg,
    manifest,
    inferenceOnnx: replaceFloatInitializers(pkg.inferenceOnnx, values),
    trainStepOnnx: replaceFloatInitializers(pkg.trainStepOnnx, values),
    ...(pkg.trainStepFedProxOnnx ? { trainStepFedProxOnnx: replaceFloatInitializers(pkg.trainStepFedProxOnnx, values) } : {}),
  };
}
