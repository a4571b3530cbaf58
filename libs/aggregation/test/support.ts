import { FitRes, WeightMap } from '../src';

/** Weights of the two-parameter layout the tests use: 'layer.weight' [2, 3] and 'layer.bias' [3], from 9 flat values. */
export function weights(values: ArrayLike<number>, shapes: Record<string, number[]> = { 'layer.weight': [2, 3], 'layer.bias': [3] }): WeightMap {
  const out: WeightMap = new Map();
  let offset = 0;
  for (const [name, shape] of Object.entries(shapes)) {
    const n = shape.reduce((a, b) => a * b, 1);
    out.set(name, { shape, data: Float32Array.from(Array.from(values).slice(offset, offset + n)) });
    offset += n;
  }
  if (offset !== values.length) throw new Error(`expected ${offset} values, got ${values.length}`);
  return out;
}

/** All values of a weight map in template order. */
export function flat(w: WeightMap): number[] {
  return [...w.values()].flatMap((t) => Array.from(t.data));
}

export function fit(node: string, values: ArrayLike<number>, numExamples: number, metrics?: Record<string, number>): FitRes {
  return { node, parameters: weights(values), numExamples, metrics };
}

/** Element-wise closeness with a useful message. */
export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol = 1e-5): void {
  expect(actual.length).toBe(expected.length);
  const bad: string[] = [];
  for (let i = 0; i < expected.length; i++) {
    if (!(Math.abs(actual[i] - expected[i]) <= tol * Math.max(1, Math.abs(expected[i])))) bad.push(`[${i}] ${actual[i]} vs ${expected[i]}`);
  }
  expect(bad).toEqual([]);
}
