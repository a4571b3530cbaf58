/** Model weights by parameter name; the same shape as the safetensors codec's tensors. */
export type WeightMap = Map<string, { shape: number[]; data: Float32Array }>;

export class UpdateRejectedError extends Error {
  constructor(readonly reason: string) {
    super(reason);
    this.name = 'UpdateRejectedError';
  }
}

/**
 * Checks an update against the global model's layout: same parameter names,
 * shapes and element counts, every value finite. Throws UpdateRejectedError
 * naming the first problem; nothing of a rejected update is aggregated.
 */
export function checkUpdate(template: WeightMap, update: WeightMap, examples: number): void {
  if (!Number.isInteger(examples) || examples <= 0) {
    throw new UpdateRejectedError(`example count must be a positive integer, got ${examples}`);
  }
  for (const name of update.keys()) {
    if (!template.has(name)) throw new UpdateRejectedError(`unexpected parameter '${name}'`);
  }
  for (const [name, t] of template) {
    const u = update.get(name);
    if (!u) throw new UpdateRejectedError(`missing parameter '${name}'`);
    if (!(u.data instanceof Float32Array)) throw new UpdateRejectedError(`parameter '${name}' is not float32`);
    if (u.shape.length !== t.shape.length || u.shape.some((d, i) => d !== t.shape[i])) {
      throw new UpdateRejectedError(`parameter '${name}' has shape [${u.shape}], expected [${t.shape}]`);
    }
    if (u.data.length !== t.data.length) throw new UpdateRejectedError(`parameter '${name}' has ${u.data.length} values, expected ${t.data.length}`);
    const d = u.data;
    for (let i = 0; i < d.length; i++) {
      if (!Number.isFinite(d[i])) throw new UpdateRejectedError(`parameter '${name}' holds a non-finite value at index ${i}`);
    }
  }
}
