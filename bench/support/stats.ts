export interface Summary {
  n: number;
  median: number;
  p95: number;
  min: number;
  max: number;
}

/** Nearest-rank quantiles, rounded to 0.01 ms. An empty sample gives NaN everywhere. */
export function summarize(samples: number[]): Summary {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] : NaN);
  return { n: sorted.length, median: r2(at(0.5)), p95: r2(at(0.95)), min: r2(sorted[0] ?? NaN), max: r2(sorted[sorted.length - 1] ?? NaN) };
}

export function median(samples: number[]): number {
  return summarize(samples).median;
}

export function r2(x: number): number {
  return Math.round(x * 100) / 100;
}
