import { WeightMap } from './weights';

/** Where each parameter lives in the flat vector of all a model's values (template order). */
export class ModelLayout {
  readonly entries: { name: string; shape: number[]; offset: number; length: number }[] = [];
  readonly size: number;

  constructor(template: WeightMap) {
    let offset = 0;
    for (const [name, t] of template) {
      this.entries.push({ name, shape: [...t.shape], offset, length: t.data.length });
      offset += t.data.length;
    }
    this.size = offset;
  }

  /** Copies an update (already checked against the template) into one flat vector. */
  flatten(update: WeightMap, into = new Float32Array(this.size)): Float32Array {
    for (const e of this.entries) into.set(update.get(e.name)!.data, e.offset);
    return into;
  }

  /** Weights from a flat vector, each parameter a view on it (no copy: a robust rule's result is the model's size). */
  unflatten(flat: Float32Array): WeightMap {
    const out: WeightMap = new Map();
    for (const e of this.entries) out.set(e.name, { shape: [...e.shape], data: flat.subarray(e.offset, e.offset + e.length) });
    return out;
  }
}
