import { WeightMap } from '../weights';
import { GaussianNoise } from './gaussian-noise';

/** The factor that brings a difference of L2 norm `norm` within `clippingNorm`: min(1, C / norm). */
export function clipFactor(norm: number, clippingNorm: number): number {
  return norm > clippingNorm ? clippingNorm / norm : 1;
}

/**
 * Local DP, run by a worker on its own result before sending it:
 * global + clip(update - global, C) + N(0, (z C)^2) per value. The coordinator
 * then only averages.
 */
export function privatizeUpdateLocally(
  update: WeightMap,
  global: WeightMap,
  settings: { clippingNorm: number; noiseMultiplier: number },
  noise: GaussianNoise,
): WeightMap {
  const { clippingNorm: C, noiseMultiplier: z } = settings;
  if (!(C > 0)) throw new Error(`clippingNorm must be > 0, got ${C}`);
  if (!(z >= 0)) throw new Error(`noiseMultiplier must be >= 0, got ${z}`);
  let sq = 0;
  for (const [name, g] of global) {
    const u = update.get(name);
    if (!u || u.data.length !== g.data.length) throw new Error(`update does not match the global weights at '${name}'`);
    for (let i = 0; i < g.data.length; i++) {
      const d = u.data[i] - g.data[i];
      sq += d * d;
    }
  }
  const f = clipFactor(Math.sqrt(sq), C);
  const out: WeightMap = new Map();
  for (const [name, g] of global) {
    const u = update.get(name)!.data;
    const next = new Float64Array(g.data.length);
    for (let i = 0; i < next.length; i++) next[i] = f * (u[i] - g.data[i]);
    noise.addTo(next, z * C);
    const data = new Float32Array(next.length);
    for (let i = 0; i < next.length; i++) data[i] = g.data[i] + next[i];
    out.set(name, { shape: [...g.shape], data });
  }
  return out;
}
