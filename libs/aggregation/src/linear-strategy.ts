import { BaseStrategy } from './base-strategy';
import { MetricsAccumulator } from './metrics';
import { AggregateFitResult, FitAggregation, FitRes, SamplingParameters } from './strategy';
import { StateMap, stateLike } from './weight-arithmetic';
import { checkUpdate, WeightMap } from './weights';

/**
 * Strategies whose aggregate is the example-weighted average of the updates,
 * followed by a server step (identity for FedAvg, momentum for FedAvgM, an
 * adaptive optimiser for the FedOpt family). The average is folded in as
 * updates arrive: a float64 sum the size of the model, whatever the number of
 * workers.
 */
export abstract class LinearStrategy<P extends SamplingParameters = SamplingParameters> extends BaseStrategy<P> {
  readonly streaming = true;

  /**
   * The new global weights from the current ones and the round's average
   * (float64, per parameter; the step may overwrite it). Stateful steps keep
   * their state on the strategy instance, one instance per task.
   */
  abstract serverStep(serverRound: number, current: WeightMap, average: StateMap): WeightMap;

  beginFit(serverRound: number, current: WeightMap): FitAggregation {
    return new LinearFitAggregation(current, (r) => this.limitsFor(current, r), (avg) => this.serverStep(serverRound, current, avg));
  }
}

/** Weighted fold of updates into float64 sums; `finish` divides and hands the average to the server step. */
export class LinearFitAggregation implements FitAggregation {
  private sums: StateMap | null;
  private total = 0;
  private count = 0;
  private readonly metrics = new MetricsAccumulator();

  constructor(
    private readonly current: WeightMap,
    private readonly limits: (r: FitRes) => Parameters<typeof checkUpdate>[3],
    private readonly step: (average: StateMap) => WeightMap,
  ) {
    this.sums = stateLike(current);
  }

  get updates(): number {
    return this.count;
  }

  get examples(): number {
    return this.total;
  }

  add(result: FitRes): void {
    const sums = this.live();
    checkUpdate(this.current, result.parameters, result.numExamples, this.limits(result));
    const w = result.numExamples;
    for (const [name, sum] of sums) foldScaled(sum, result.parameters.get(name)!.data, w);
    this.total += w;
    this.count++;
    this.metrics.add(w, result.metrics);
  }

  finish(): AggregateFitResult {
    const sums = this.live();
    if (this.count === 0) throw new Error('no update to aggregate');
    // A division, not a product with 1 / total: the same float64 operations as
    // FedAvgAggregator, so that tasks run through a strategy keep FedAvg's
    // results to the bit; it runs once per round, not per update.
    const total = this.total;
    for (const sum of sums.values()) {
      for (let i = 0; i < sum.length; i++) sum[i] /= total;
    }
    const parameters = this.step(sums);
    this.sums = null;
    return { parameters, metrics: this.metrics.result(), updates: this.count, examples: this.total };
  }

  dispose(): void {
    this.sums = null;
  }

  private live(): StateMap {
    if (!this.sums) throw new Error('this aggregation is finished');
    return this.sums;
  }
}

/** sum += w * x, the hot loop of every linear strategy. */
export function foldScaled(sum: Float64Array, x: Float32Array, w: number): void {
  const n = sum.length;
  let i = 0;
  // Unrolled by four: V8 keeps the loads and the adds in flight together.
  for (; i + 3 < n; i += 4) {
    sum[i] += w * x[i];
    sum[i + 1] += w * x[i + 1];
    sum[i + 2] += w * x[i + 2];
    sum[i + 3] += w * x[i + 3];
  }
  for (; i < n; i++) sum[i] += w * x[i];
}

/** A float64 state map rounded to float32 weights with the template's shapes. */
export function toWeights(template: WeightMap, values: StateMap): WeightMap {
  const out: WeightMap = new Map();
  for (const [name, t] of template) out.set(name, { shape: [...t.shape], data: Float32Array.from(values.get(name)!) });
  return out;
}
