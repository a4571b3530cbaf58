import { runToEnd } from './update-store';

/** Model weights by parameter name; the same shape as the safetensors codec's tensors. */
export type WeightMap = Map<string, { shape: number[]; data: Float32Array }>;

/** Why an update was refused; stable strings, recorded on the round beside the human-readable reason. */
export type RejectionCode =
  | 'bad-example-count'
  | 'too-many-examples'
  | 'unexpected-parameter'
  | 'missing-parameter'
  | 'wrong-dtype'
  | 'wrong-shape'
  | 'non-finite'
  | 'norm-too-large'
  | 'missing-metric';

export class UpdateRejectedError extends Error {
  constructor(
    readonly reason: string,
    readonly code: RejectionCode = 'bad-example-count',
  ) {
    super(reason);
    this.name = 'UpdateRejectedError';
  }
}

/** Task-level bounds an update must respect on top of the model's layout. */
export interface UpdateLimits {
  /** Examples the worker registered for this use case; a larger claim is refused (it would inflate the worker's weight). */
  maxExamples?: number;
  /** Bound on the L2 norm of the update, measured against `reference` when given (the change a worker made), else of the weights themselves. */
  maxL2Norm?: number;
  /** The global weights the worker started from. */
  reference?: WeightMap;
}

/**
 * Checks an update against the global model's layout: same parameter names,
 * shapes and element counts, every value finite, and the optional limits.
 * Throws UpdateRejectedError naming the first problem; nothing of a rejected
 * update is aggregated. Returns the L2 norm measured (of the difference to
 * `limits.reference` if given, else of the update).
 */
export function checkUpdate(template: WeightMap, update: WeightMap, examples: number, limits: UpdateLimits = {}): number {
  return runToEnd(checkUpdateSteps(template, update, examples, limits, Infinity));
}

/**
 * checkUpdate as a generator that pauses after every `sliceValues` values
 * (rounded down to a multiple of 4), for a caller that lets the event loop
 * run between slices (a large model). The same norm to the bit, whatever the
 * slices: the pass's accumulators run on from one slice to the next.
 */
export function* checkUpdateSteps(template: WeightMap, update: WeightMap, examples: number, limits: UpdateLimits, sliceValues: number): Generator<void, number> {
  checkUpdateLayout(template, update, examples, limits);
  const slice = Number.isFinite(sliceValues) ? Math.max(4, sliceValues - (sliceValues % 4)) : Infinity;
  let squares = 0;
  for (const name of template.keys()) {
    const d = update.get(name)!.data;
    const ref = limits.reference?.get(name)?.data;
    if (limits.reference && (!ref || ref.length !== d.length)) throw new Error(`reference weights do not match the template at '${name}'`);
    const acc = new Float64Array(ACCUMULATORS);
    for (let from = 0; from < d.length; from += slice) {
      const to = Math.min(d.length, from + slice);
      squaresAndPoison(d, ref ?? null, from, to, acc);
      if (to < d.length) yield;
    }
    const [s0, s1, s2, s3, p0, p1] = acc;
    if (p0 + p1 !== 0) {
      for (let i = 0; i < d.length; i++) {
        if (!Number.isFinite(d[i])) throw new UpdateRejectedError(`parameter '${name}' holds a non-finite value at index ${i}`, 'non-finite');
      }
    }
    squares += s0 + s1 + s2 + s3;
  }
  const norm = Math.sqrt(squares);
  if (limits.maxL2Norm !== undefined && !(norm <= limits.maxL2Norm)) {
    const of = limits.reference ? 'L2 norm of the update (difference to the global weights)' : 'L2 norm of the weights';
    throw new UpdateRejectedError(`${of} is ${norm.toPrecision(6)}, beyond the bound ${limits.maxL2Norm}`, 'norm-too-large');
  }
  return norm;
}

/**
 * The part of checkUpdate that does not read the values: example count and
 * layout. For folds that check the values as they go (WeightedSum).
 */
export function checkUpdateLayout(template: WeightMap, update: WeightMap, examples: number, limits: Pick<UpdateLimits, 'maxExamples'> = {}): void {
  if (!Number.isInteger(examples) || examples <= 0) {
    throw new UpdateRejectedError(`example count must be a positive integer, got ${examples}`, 'bad-example-count');
  }
  if (limits.maxExamples !== undefined && examples > limits.maxExamples) {
    throw new UpdateRejectedError(`example count ${examples} is beyond the ${limits.maxExamples} the worker registered`, 'too-many-examples');
  }
  for (const name of update.keys()) {
    if (!template.has(name)) throw new UpdateRejectedError(`unexpected parameter '${name}'`, 'unexpected-parameter');
  }
  for (const [name, t] of template) {
    const u = update.get(name);
    if (!u) throw new UpdateRejectedError(`missing parameter '${name}'`, 'missing-parameter');
    if (!(u.data instanceof Float32Array)) throw new UpdateRejectedError(`parameter '${name}' is not float32`, 'wrong-dtype');
    if (u.shape.length !== t.shape.length || u.shape.some((d, i) => d !== t.shape[i])) {
      throw new UpdateRejectedError(`parameter '${name}' has shape [${u.shape}], expected [${t.shape}]`, 'wrong-shape');
    }
    // From the shape: a template may carry the layout alone, without values.
    const expected = t.shape.reduce((n, d) => n * d, 1);
    if (u.data.length !== expected) {
      throw new UpdateRejectedError(`parameter '${name}' has ${u.data.length} values, expected ${expected}`, 'wrong-shape');
    }
  }
}

/** squaresAndPoison's running sums: four of squares, two of poison. */
const ACCUMULATORS = 6;

/**
 * Sum of squares of d - ref (or d) over [from, to) and a "poison" sum that is
 * 0 exactly when every value is finite (x - x is NaN for NaN and +-Inf, else
 * 0), added into `acc` (four sums of squares, two of poison). One
 * branch-free pass with four independent accumulators, so the loop runs at
 * memory speed instead of waiting on one chain of additions. `from` is a
 * multiple of 4, so that slices take the values into the same accumulators,
 * in the same order, as one pass over the whole.
 */
function squaresAndPoison(d: Float32Array, ref: Float32Array | null, from: number, to: number, acc: Float64Array): void {
  let s0 = acc[0], s1 = acc[1], s2 = acc[2], s3 = acc[3];
  let p0 = acc[4], p1 = acc[5];
  const n = to;
  let i = from;
  if (ref) {
    for (; i + 3 < n; i += 4) {
      const a = d[i], b = d[i + 1], c = d[i + 2], e = d[i + 3];
      p0 += a - a + (b - b);
      p1 += c - c + (e - e);
      const x = a - ref[i], y = b - ref[i + 1], z = c - ref[i + 2], w = e - ref[i + 3];
      s0 += x * x;
      s1 += y * y;
      s2 += z * z;
      s3 += w * w;
    }
    for (; i < n; i++) {
      const a = d[i];
      p0 += a - a;
      const x = a - ref[i];
      s0 += x * x;
    }
  } else {
    for (; i + 3 < n; i += 4) {
      const a = d[i], b = d[i + 1], c = d[i + 2], e = d[i + 3];
      p0 += a - a + (b - b);
      p1 += c - c + (e - e);
      s0 += a * a;
      s1 += b * b;
      s2 += c * c;
      s3 += e * e;
    }
    for (; i < n; i++) {
      const a = d[i];
      p0 += a - a;
      s0 += a * a;
    }
  }
  acc[0] = s0;
  acc[1] = s1;
  acc[2] = s2;
  acc[3] = s3;
  acc[4] = p0;
  acc[5] = p1;
}
