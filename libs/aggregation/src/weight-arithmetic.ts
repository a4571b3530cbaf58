import { WeightMap } from './weights';

/** A new weight map of the same layout, filled with zeros. */
export function zerosLike(template: WeightMap): WeightMap {
  const out: WeightMap = new Map();
  for (const [name, t] of template) out.set(name, { shape: [...t.shape], data: new Float32Array(t.data.length) });
  return out;
}

/** A deep copy. */
export function cloneWeights(w: WeightMap): WeightMap {
  const out: WeightMap = new Map();
  for (const [name, t] of w) out.set(name, { shape: [...t.shape], data: Float32Array.from(t.data) });
  return out;
}

/** Number of values over all parameters. */
export function valueCount(w: WeightMap): number {
  let n = 0;
  for (const t of w.values()) n += t.data.length;
  return n;
}

/** L2 norm of a - b over all parameters (of a alone without b). */
export function l2Distance(a: WeightMap, b?: WeightMap): number {
  let s = 0;
  for (const [name, t] of a) {
    const x = t.data;
    const y = b?.get(name)?.data;
    if (b && (!y || y.length !== x.length)) throw new Error(`weights differ in layout at '${name}'`);
    for (let i = 0; i < x.length; i++) {
      const d = y ? x[i] - y[i] : x[i];
      s += d * d;
    }
  }
  return Math.sqrt(s);
}

/**
 * A buffer of server-side state: float32 where it is laid out like the model
 * (FedAvgM's momentum, the FedOpt family's m and v: each as large as the
 * model, as in Flower, whose state has the weights' dtype), float64 for the
 * few scalars that need it (the privacy accountant, DP's clipping norm) and
 * in checkpoints written before the model-shaped state became float32.
 */
export type StateBuffer = Float32Array | Float64Array;

/** Server state by name: what a strategy saves into a checkpoint and loads from one. */
export type StateMap = Map<string, StateBuffer>;

/** Per-parameter float64 sums the size of a model, for one round (QFedAvg's numerator, central DP's clipped sum). */
export type SumMap = Map<string, Float64Array>;

/** A round's average per parameter, as linear strategies' server steps get it: float32 from the streaming fold, float64 where a wrapper computes it itself (differential privacy). */
export type AverageMap = ReadonlyMap<string, Float32Array | Float64Array>;

/** Zeroed float32 state laid out like `template` (FedAvgM's momentum, FedOpt's m and v). */
export function stateLike(template: WeightMap): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const [name, t] of template) out.set(name, new Float32Array(t.data.length));
  return out;
}

/** Zeroed float64 sums laid out like `template`. */
export function sumsLike(template: WeightMap): SumMap {
  const out: SumMap = new Map();
  for (const [name, t] of template) out.set(name, new Float64Array(t.data.length));
  return out;
}
