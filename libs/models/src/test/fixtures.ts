import { buildClassifierPackage, ClassifierSpec } from '../classifier';
import { ClassifierPackage } from '../manifest';
import { seededRandom } from '@fl/datasets';

export function smallSpec(hidden: number[], overrides: Partial<ClassifierSpec> = {}): ClassifierSpec {
  return {
    name: `test-mlp-${hidden.join('x') || 'linear'}`,
    featureNames: ['f0', 'f1', 'f2', 'f3'],
    classes: ['a', 'b', 'c'],
    hidden,
    normalization: { mean: [1, -2, 0.5, 10], std: [2, 0.5, 1, 4] },
    seed: 7,
    ...overrides,
  };
}

export function smallPackage(hidden: number[], overrides: Partial<ClassifierSpec> = {}): ClassifierPackage {
  return buildClassifierPackage(smallSpec(hidden, overrides));
}

/** Gaussian-ish noise from a seeded uniform PRNG (sum of 4 uniforms). */
function noise(rand: () => number): number {
  return rand() + rand() + rand() + rand() - 2;
}

/** Random raw features around the spec's normalisation, labels and one-hot targets. */
export function randomBatch(pkg: ClassifierPackage, n: number, seed: number) {
  const rand = seededRandom(seed);
  const F = pkg.manifest.inputs.features.length;
  const C = pkg.manifest.classes.length;
  const { mean, std } = pkg.manifest.normalization;
  const x = new Float32Array(n * F);
  const labels = new Int32Array(n);
  const y = new Float32Array(n * C);
  for (let r = 0; r < n; r++) {
    for (let j = 0; j < F; j++) x[r * F + j] = mean[j] + 2 * std[j] * noise(rand);
    labels[r] = Math.floor(rand() * C);
    y[r * C + labels[r]] = 1;
  }
  return { x, labels, y, n };
}

/** Linearly separable clusters: class c is centred at mean + 3·std·e_c (raw units). */
export function separableData(pkg: ClassifierPackage, n: number, seed: number) {
  const rand = seededRandom(seed);
  const F = pkg.manifest.inputs.features.length;
  const C = pkg.manifest.classes.length;
  const { mean, std } = pkg.manifest.normalization;
  const x = new Float32Array(n * F);
  const labels = new Int32Array(n);
  for (let r = 0; r < n; r++) {
    const c = r % C;
    labels[r] = c;
    for (let j = 0; j < F; j++) x[r * F + j] = mean[j] + std[j] * ((j === c ? 3 : 0) + 0.5 * noise(rand));
  }
  return { x, labels, n };
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length mismatch ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
