import { Metrics } from './strategy';

/**
 * Example-weighted mean of every metric over the answers that report it:
 * sum n_k m_k / sum n_k, per key. Non-finite values are left out (a worker's
 * broken metric must not turn the round's figure into NaN).
 */
export function aggregateMetrics(results: readonly { numExamples: number; metrics?: Metrics }[]): Metrics {
  const num = new Map<string, number>();
  const den = new Map<string, number>();
  for (const r of results) {
    if (!r.metrics) continue;
    for (const [key, value] of Object.entries(r.metrics)) {
      if (!Number.isFinite(value) || !(r.numExamples > 0)) continue;
      num.set(key, (num.get(key) ?? 0) + value * r.numExamples);
      den.set(key, (den.get(key) ?? 0) + r.numExamples);
    }
  }
  const out: Metrics = {};
  for (const [key, n] of num) out[key] = n / den.get(key)!;
  return out;
}

/** Streaming form of aggregateMetrics, for aggregations that do not keep the answers. */
export class MetricsAccumulator {
  private readonly num = new Map<string, number>();
  private readonly den = new Map<string, number>();

  add(numExamples: number, metrics: Metrics | undefined): void {
    if (!metrics || !(numExamples > 0)) return;
    for (const [key, value] of Object.entries(metrics)) {
      if (!Number.isFinite(value)) continue;
      this.num.set(key, (this.num.get(key) ?? 0) + value * numExamples);
      this.den.set(key, (this.den.get(key) ?? 0) + numExamples);
    }
  }

  result(): Metrics {
    const out: Metrics = {};
    for (const [key, n] of this.num) out[key] = n / this.den.get(key)!;
    return out;
  }
}
