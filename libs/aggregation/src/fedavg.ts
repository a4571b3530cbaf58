import { WeightedSum } from './fold/weighted-sum';
import { checkUpdateLayout, WeightMap } from './weights';

/**
 * FedAvg (McMahan et al. 2017): the new global weights are the average of the
 * sites' weights, each weighted by its number of training examples,
 *   w = sum_k n_k w_k / sum_k n_k.
 * Updates are folded in as they arrive (WeightedSum, the fold of every linear
 * strategy, so FedAvg through the registry gives the same bits), so memory is
 * two models' worth whatever the number of sites, and the order of arrival
 * does not change the result beyond float32 rounding.
 */
export class FedAvgAggregator {
  private readonly sum: WeightedSum;
  private totalExamples = 0;
  private count = 0;

  constructor(private readonly template: WeightMap) {
    this.sum = new WeightedSum(template);
  }

  /** Validates and folds one site's update in; throws UpdateRejectedError and changes nothing if it is bad. */
  add(update: WeightMap, examples: number): void {
    checkUpdateLayout(this.template, update, examples);
    this.sum.add(update, examples);
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
    for (const [name, data] of this.sum.mean(this.totalExamples)) out.set(name, { shape: [...this.template.get(name)!.shape], data });
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
