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

/** Per-parameter float64 buffers the size of a model: the server state of stateful strategies. */
export type StateMap = Map<string, Float64Array>;

/** A round's average per parameter, as linear strategies' server steps get it: float32 from the streaming fold, float64 where a wrapper computes it itself (differential privacy). */
export type AverageMap = ReadonlyMap<string, Float32Array | Float64Array>;

export function stateLike(template: WeightMap): StateMap {
  const out: StateMap = new Map();
  for (const [name, t] of template) out.set(name, new Float64Array(t.data.length));
  return out;
}
