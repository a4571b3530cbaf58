import { checkUpdate, WeightMap } from './weights';

/**
 * FedAvg (McMahan et al. 2017): the new global weights are the average of the
 * sites' weights, each weighted by its number of training examples,
 *   w = sum_k n_k w_k / sum_k n_k.
 * Updates are folded in as they arrive, into float64 sums, so memory is one
 * model's worth whatever the number of sites, and the order of arrival does
 * not change the result beyond float64 rounding.
 */
export class FedAvgAggregator {
  private readonly sums = new Map<string, Float64Array>();
  private totalExamples = 0;
  private count = 0;

  constructor(private readonly template: WeightMap) {
    for (const [name, t] of template) this.sums.set(name, new Float64Array(t.data.length));
  }

  /** Validates and folds one site's update in; throws UpdateRejectedError and changes nothing if it is bad. */
  add(update: WeightMap, examples: number): void {
    checkUpdate(this.template, update, examples);
    for (const [name, sum] of this.sums) {
      const d = update.get(name)!.data;
      for (let i = 0; i < sum.length; i++) sum[i] += examples * d[i];
    }
    this.totalExamples += examples;
    this.count++;
  }

  get updates(): number {
    return this.count;
  }

  get examples(): number {
    return this.totalExamples;
  }

  result(): WeightMap {
    if (this.count === 0) throw new Error('FedAvg: no update to aggregate');
    const out: WeightMap = new Map();
    for (const [name, sum] of this.sums) {
      const data = new Float32Array(sum.length);
      for (let i = 0; i < sum.length; i++) data[i] = sum[i] / this.totalExamples;
      out.set(name, { shape: [...this.template.get(name)!.shape], data });
    }
    return out;
  }
}

/** Example-weighted mean of a metric over sites: sum n_k m_k / sum n_k. */
export function weightedMean(values: { value: number; examples: number }[]): number {
  let num = 0;
  let den = 0;
  for (const v of values) {
    num += v.value * v.examples;
    den += v.examples;
  }
  return den > 0 ? num / den : NaN;
}
