import { BaseStrategy } from '../base-strategy';
import { STEP_SLICE_VALUES } from '../linear-strategy';
import { MetricsAccumulator } from '../metrics';
import { AggregateFitResult, ClientConfig, FitAggregation, FitRes, SamplingParameters, WeightArrays } from '../strategy';
import { inSlices, OneAtATime, prefaultPages, runToEnd, runYielding } from '../update-store';
import { SumMap, sumsLike } from '../weight-arithmetic';
import { checkUpdate, checkUpdateSteps, UpdateRejectedError, WeightMap } from '../weights';

export interface QFedAvgParameters extends SamplingParameters {
  q_param: number;
  qffl_learning_rate: number;
}

/** Fit metric carrying a worker's loss on the global weights it received, before training: F_k(w_t). */
export const QFFL_LOSS_METRIC = 'loss_before_fit';
/** Fit config entry asking the workers for QFFL_LOSS_METRIC (it costs them one evaluation pass). */
export const QFFL_LOSS_REQUEST = 'report_loss_before_fit';

/**
 * q-FedAvg (Li et al. 2020, "Fair Resource Allocation in Federated Learning",
 * Algorithm 2). With L = 1 / qffl_learning_rate and F_k the worker's loss on
 * the received weights:
 *   Delta_k = L (w_t - w_k),  h_k = q F_k^(q-1) ||Delta_k||^2 + L F_k^q,
 *   w_{t+1} = w_t - sum_k F_k^q Delta_k / sum_k h_k.
 * Every term is per update, so the aggregation streams. F_k gets 1e-10 added
 * so that a zero loss with q < 1 does not divide by zero. The fit config asks
 * every worker for F_k (QFFL_LOSS_REQUEST); Flower's QFedAvg uses one
 * server-side loss for all workers instead, which the paper's F_k is not.
 */
export class QFedAvg extends BaseStrategy<QFedAvgParameters> {
  readonly name = 'QFedAvg';
  readonly streaming = true;

  fitConfig(): ClientConfig {
    return { [QFFL_LOSS_REQUEST]: true };
  }

  beginFit(_serverRound: number, current: WeightMap): FitAggregation {
    return new QFedAvgAggregation(current, this.parameters, (r) => this.limitsFor(current, r));
  }
}

/**
 * The sums of one round: sum_k F_k^q Delta_k in float64 (twice the model)
 * and sum_k h_k; with the global weights and the update being added, a large
 * model is held four times (finishAsync writes the new weights into the
 * buffer they are sent from).
 */
class QFedAvgAggregation implements FitAggregation {
  private numerator: SumMap | null;
  private denominator = 0;
  private count = 0;
  private total = 0;
  private done = false;
  private readonly metrics = new MetricsAccumulator();
  private readonly adds = new OneAtATime();

  constructor(
    private readonly current: WeightMap,
    private readonly p: QFedAvgParameters,
    private readonly limits: (r: FitRes) => Parameters<typeof checkUpdate>[3],
  ) {
    this.numerator = sumsLike(current);
  }

  get updates(): number {
    return this.count;
  }

  get examples(): number {
    return this.total;
  }

  add(result: FitRes): void {
    if (this.adds.busy) throw new Error('an update is still being added');
    runToEnd(this.adding(result, Infinity));
  }

  addAsync(result: FitRes, sliceValues = STEP_SLICE_VALUES): Promise<void> {
    return this.adds.run(() => this.adding(result, sliceValues));
  }

  /** Checks the update, then adds its terms, pausing after every `sliceValues` values of each pass. */
  private *adding(result: FitRes, sliceValues: number): Generator<void, void> {
    const numerator = this.numerator;
    if (this.done || !numerator) throw new Error('this aggregation is finished');
    const loss = result.metrics?.[QFFL_LOSS_METRIC];
    if (loss === undefined || !Number.isFinite(loss) || loss < 0) {
      throw new UpdateRejectedError(`QFedAvg needs the fit metric '${QFFL_LOSS_METRIC}' (loss on the received weights, >= 0), got ${loss}`, 'missing-metric');
    }
    yield* checkUpdateSteps(this.current, result.parameters, result.numExamples, this.limits(result) ?? {}, sliceValues);
    const L = 1 / this.p.qffl_learning_rate;
    const q = this.p.q_param;
    const F = loss + 1e-10;
    const Fq = Math.pow(F, q);
    let sq = 0;
    for (const [name, t] of this.current) {
      const w = t.data;
      const wk = result.parameters.get(name)!.data;
      const num = numerator.get(name)!;
      yield* inSlices(w.length, sliceValues, (from, to) => {
        // Disposed meanwhile (the round abandoned): the sums are no longer anyone's.
        if (this.numerator !== numerator) throw new Error('this aggregation is finished');
        for (let i = from; i < to; i++) {
          const delta = L * (w[i] - wk[i]);
          sq += delta * delta;
          num[i] += Fq * delta;
        }
      });
    }
    this.denominator += q * Math.pow(F, q - 1) * sq + L * Fq;
    this.count++;
    this.total += result.numExamples;
    this.metrics.add(result.numExamples, result.metrics);
  }

  finish(): AggregateFitResult {
    if (this.adds.busy) throw new Error('an update is still being added');
    return runToEnd(this.close());
  }

  async prefault(sliceValues = STEP_SLICE_VALUES): Promise<void> {
    const numerator = this.numerator;
    if (numerator) await runYielding(prefaultPages(numerator.values(), sliceValues, () => this.numerator === numerator));
  }

  /** finish, letting the event loop run between slices of values, and writing the new weights into `into` where given. */
  finishAsync(into?: WeightArrays, sliceValues = STEP_SLICE_VALUES): Promise<AggregateFitResult> {
    if (this.adds.busy) return Promise.reject(new Error('an update is still being added'));
    return runYielding(this.close(into, sliceValues));
  }

  /** w_{t+1} = w_t - numerator / denominator, a slice of values at a time, pausing after each. */
  private *close(into?: WeightArrays, sliceValues = STEP_SLICE_VALUES): Generator<void, AggregateFitResult> {
    if (this.done || !this.numerator) throw new Error('this aggregation is finished');
    if (this.count === 0) throw new Error('no update to aggregate');
    this.done = true;
    const numerator = this.numerator;
    const out: WeightMap = new Map();
    for (const [name, t] of this.current) {
      const num = numerator.get(name)!;
      const next = into?.get(name) ?? new Float32Array(num.length);
      const d = this.denominator;
      yield* inSlices(num.length, sliceValues, (from, to) => {
        for (let i = from; i < to; i++) next[i] = t.data[i] - num[i] / d;
      });
      out.set(name, { shape: [...t.shape], data: next });
    }
    this.numerator = null;
    return { parameters: out, metrics: this.metrics.result(), updates: this.count, examples: this.total };
  }

  dispose(): void {
    this.done = true;
    this.numerator = null;
  }
}
