import { BaseStrategy } from '../base-strategy';
import { LinearStrategy, STEP_SLICE_VALUES } from '../linear-strategy';
import { MetricsAccumulator } from '../metrics';
import {
  AggregateEvaluateResult,
  AggregateFitResult,
  ClientConfig,
  ClientInstruction,
  EvaluateRes,
  Failure,
  FitAggregation,
  FitRes,
  Metrics,
  SamplingParameters,
  Strategy,
  WeightArrays,
} from '../strategy';
import { hasServerState, ServerStateError, StateTransfer } from '../server-state';
import { inSlices, OneAtATime, prefaultPages, runToEnd, runYielding } from '../update-store';
import { StateMap, SumMap, sumsLike } from '../weight-arithmetic';
import { checkUpdate, checkUpdateSteps, WeightMap } from '../weights';
import { clipFactor } from './clipping';
import { GaussianNoise } from './gaussian-noise';
import { PrivacyParameters, updateNoiseMultiplier } from './privacy-parameters';

/**
 * Client-level DP-FedAvg (McMahan et al. 2018) around a linear strategy.
 *
 * Central mode: each update's difference to the global weights is clipped to
 * L2 norm C, the clipped differences are summed unweighted (an example
 * count would let one site's weight, and so the sensitivity, grow), Gaussian
 * noise N(0, (z C)^2) is added to the sum, and the sum is divided by the
 * number of workers sampled for the round (a fixed denominator, so that a
 * dropout does not change the sensitivity). The inner strategy's server
 * step (momentum, Adam, ...) then runs on this noised average: post-processing.
 *
 * Adaptive clipping (Andrew et al. 2021): the coordinator also counts the
 * updates that needed no clipping, adds N(0, sigma_b^2) to the count and
 * moves C geometrically towards the target quantile gamma:
 * C <- C exp(-clip_norm_lr (noised unclipped fraction - gamma)). The update
 * noise is then z_delta C with z_delta from updateNoiseMultiplier, so the
 * round still costs noise multiplier z in the accountant.
 *
 * Local mode: the workers clip and noise their own updates
 * (privatizeUpdateLocally) with the settings sent in the fit config; the
 * coordinator aggregates with the inner strategy unchanged.
 */
export class DifferentiallyPrivateStrategy implements Strategy {
  readonly streaming: boolean;
  private clippingNorm: number;
  private readonly noise: GaussianNoise;

  /** `noise`: a seed (reproducible, for tests) or a generator (GaussianNoise.secure() for tasks). */
  constructor(
    readonly inner: BaseStrategy,
    readonly privacy: PrivacyParameters,
    noise: number | GaussianNoise,
  ) {
    if (privacy.mode === 'central' && !(inner instanceof LinearStrategy)) {
      throw new Error(`central differential privacy needs a strategy that averages (FedAvg, FedAvgM, FedProx, FedAdagrad, FedAdam, FedYogi); '${inner.name}' does not`);
    }
    this.clippingNorm = privacy.clipping_norm;
    this.noise = typeof noise === 'number' ? new GaussianNoise(noise) : noise;
    this.streaming = inner.streaming;
  }

  setSampledClients(serverRound: number, count: number): void {
    this.inner.setSampledClients(serverRound, count);
  }

  /**
   * The inner strategy's state (momentum, moments) and, with adaptive
   * clipping, the clipping norm the next round uses (`dp/clipping_norm`).
   */
  saveServerState(how?: StateTransfer): StateMap {
    const out: StateMap = hasServerState(this.inner) ? this.inner.saveServerState(how) : new Map();
    if (this.privacy.adaptive_clipping) out.set(DP_CLIPPING_NORM, Float64Array.of(this.clippingNorm));
    return out;
  }

  loadServerState(state: StateMap, template: WeightMap, how?: StateTransfer): void {
    const rest: StateMap = new Map([...state].filter(([k]) => k !== DP_CLIPPING_NORM));
    const c = state.get(DP_CLIPPING_NORM);
    if (c && !(c.length === 1 && c[0] > 0 && Number.isFinite(c[0]))) throw new ServerStateError(`${DP_CLIPPING_NORM} must be one positive number`);
    if (hasServerState(this.inner)) this.inner.loadServerState(rest, template, how);
    else if (rest.size) throw new ServerStateError(`${this.inner.name} keeps no server state, but the saved state holds ${[...rest.keys()].slice(0, 3).join(', ')}`);
    if (c && this.privacy.adaptive_clipping) this.clippingNorm = c[0];
  }

  get name(): string {
    return `DP(${this.inner.name})`;
  }

  get parameters(): Readonly<SamplingParameters> {
    return this.inner.parameters;
  }

  /** The clipping norm the next round will use (changes round by round with adaptive clipping). */
  get currentClippingNorm(): number {
    return this.clippingNorm;
  }

  configureFit(serverRound: number, availableNodes: readonly string[], baseConfig: ClientConfig = {}): ClientInstruction[] {
    const ins = this.inner.configureFit(serverRound, availableNodes, baseConfig);
    if (this.privacy.mode === 'local') {
      for (const i of ins) Object.assign(i.config, { dp_clipping_norm: this.clippingNorm, dp_noise_multiplier: this.privacy.noise_multiplier });
    }
    return ins;
  }

  /** The inner strategy's fit config, and in local mode the clipping and noise each worker applies. */
  fitConfig(serverRound: number): ClientConfig {
    const config = this.inner.fitConfig(serverRound);
    if (this.privacy.mode === 'local') Object.assign(config, { dp_clipping_norm: this.clippingNorm, dp_noise_multiplier: this.privacy.noise_multiplier });
    return config;
  }

  beginFit(serverRound: number, current: WeightMap): FitAggregation {
    if (this.privacy.mode === 'local') return this.inner.beginFit(serverRound, current);
    const inner = this.inner as LinearStrategy;
    return new CentralDpAggregation(current, this.clippingNorm, (r) => inner.limitsFor(current, r), (sum, count, unclipped, into, sliceValues) =>
      this.closeRound(serverRound, current, sum, count, unclipped, into, sliceValues),
    );
  }

  aggregateFit(serverRound: number, current: WeightMap, results: FitRes[], _failures: Failure[] = []): AggregateFitResult {
    const agg = this.beginFit(serverRound, current);
    try {
      for (const r of results) agg.add(r);
      return agg.finish();
    } finally {
      agg.dispose();
    }
  }

  configureEvaluate(serverRound: number, availableNodes: readonly string[], baseConfig?: ClientConfig): ClientInstruction[] {
    return this.inner.configureEvaluate(serverRound, availableNodes, baseConfig);
  }

  aggregateEvaluate(serverRound: number, results: EvaluateRes[], failures?: Failure[]): AggregateEvaluateResult | null {
    return this.inner.aggregateEvaluate(serverRound, results, failures);
  }

  evaluate(serverRound: number, parameters: WeightMap): { loss: number; metrics: Metrics } | null {
    return this.inner.evaluate(serverRound, parameters);
  }

  /**
   * Noise, fixed denominator, server step (into `into` where given), clipping-norm
   * update: a slice of values at a time, pausing after each (a large model's
   * noise takes seconds). The noise is drawn in the same order however it is
   * sliced, so the same seed gives the same bits.
   */
  private *closeRound(
    serverRound: number,
    current: WeightMap,
    sum: SumMap,
    count: number,
    unclipped: number,
    into?: WeightArrays,
    sliceValues = STEP_SLICE_VALUES,
  ): Generator<void, { parameters: WeightMap; metrics: Metrics }> {
    const p = this.privacy;
    const C = this.clippingNorm;
    const m = Math.max(count, this.inner.sampledClients(serverRound) ?? count);
    const countStddev = p.clipped_count_stddev ?? m / 20;
    const z = p.adaptive_clipping ? updateNoiseMultiplier(p.noise_multiplier, countStddev) : p.noise_multiplier;
    for (const [name, t] of current) {
      const s = sum.get(name)!;
      yield* inSlices(s.length, sliceValues, (from, to) => {
        this.noise.addTo(s.subarray(from, to), z * C);
        for (let i = from; i < to; i++) s[i] = t.data[i] + s[i] / m;
      });
    }
    // The average is `sum`'s own arrays, now noised: the inner strategy's step runs on it (post-processing).
    const next = into ?? new Map([...current].map(([name, t]) => [name, new Float32Array(t.data.length)]));
    yield* (this.inner as LinearStrategy).stepInto(serverRound, current, sum, next, sliceValues);
    const parameters: WeightMap = new Map([...current].map(([name, t]) => [name, { shape: [...t.shape], data: next.get(name)! }]));
    const metrics: Metrics = { dp_clipping_norm: C, dp_noise_stddev: (z * C) / m, dp_noise_multiplier: p.noise_multiplier };
    if (p.adaptive_clipping) {
      const fraction = (unclipped + countStddev * this.noise.next()) / m;
      this.clippingNorm = C * Math.exp(-p.clip_norm_lr * (fraction - p.target_clipped_quantile));
      metrics.dp_unclipped_fraction = fraction;
      metrics.dp_next_clipping_norm = this.clippingNorm;
    }
    return { parameters, metrics };
  }
}

/**
 * Sum of clipped differences to the global weights, one update at a time, in
 * float64 (twice the model): with the global weights and the update being
 * added, a large model is held four times (finishAsync writes the new weights
 * into the buffer they are sent from).
 */
class CentralDpAggregation implements FitAggregation {
  private sum: SumMap | null;
  private count = 0;
  private total = 0;
  private unclipped = 0;
  private readonly metrics = new MetricsAccumulator();
  private readonly adds = new OneAtATime();

  constructor(
    private readonly current: WeightMap,
    private readonly clippingNorm: number,
    private readonly limits: (r: FitRes) => Parameters<typeof checkUpdate>[3],
    private readonly close: (
      sum: SumMap,
      count: number,
      unclipped: number,
      into?: WeightArrays,
      sliceValues?: number,
    ) => Generator<void, { parameters: WeightMap; metrics: Metrics }>,
  ) {
    this.sum = sumsLike(current);
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

  /** Checks the update and measures its norm, then adds its clipped difference, pausing after every `sliceValues` values of each pass. */
  private *adding(result: FitRes, sliceValues: number): Generator<void, void> {
    const sum = this.sum;
    if (!sum) throw new Error('this aggregation is finished');
    const norm = yield* checkUpdateSteps(this.current, result.parameters, result.numExamples, { ...this.limits(result), reference: this.current }, sliceValues);
    const f = clipFactor(norm, this.clippingNorm);
    for (const [name, t] of this.current) {
      const s = sum.get(name)!;
      const u = result.parameters.get(name)!.data;
      const g = t.data;
      yield* inSlices(s.length, sliceValues, (from, to) => {
        // Disposed meanwhile (the round abandoned): the sum is no longer anyone's.
        if (this.sum !== sum) throw new Error('this aggregation is finished');
        for (let i = from; i < to; i++) s[i] += f * (u[i] - g[i]);
      });
    }
    if (f === 1) this.unclipped++;
    this.count++;
    this.total += result.numExamples;
    this.metrics.add(result.numExamples, result.metrics);
  }

  finish(): AggregateFitResult {
    if (this.adds.busy) throw new Error('an update is still being added');
    return runToEnd(this.closing());
  }

  async prefault(sliceValues = STEP_SLICE_VALUES): Promise<void> {
    const sum = this.sum;
    if (sum) await runYielding(prefaultPages(sum.values(), sliceValues, () => this.sum === sum));
  }

  /** finish, letting the event loop run between slices of values, and writing the new weights into `into` where given. */
  finishAsync(into?: WeightArrays, sliceValues?: number): Promise<AggregateFitResult> {
    if (this.adds.busy) return Promise.reject(new Error('an update is still being added'));
    return runYielding(this.closing(into, sliceValues));
  }

  private *closing(into?: WeightArrays, sliceValues?: number): Generator<void, AggregateFitResult> {
    if (!this.sum) throw new Error('this aggregation is finished');
    if (this.count === 0) throw new Error('no update to aggregate');
    const sum = this.sum;
    this.sum = null;
    const { parameters, metrics } = yield* this.close(sum, this.count, this.unclipped, into, sliceValues);
    return { parameters, metrics: { ...this.metrics.result(), ...metrics }, updates: this.count, examples: this.total };
  }

  dispose(): void {
    this.sum = null;
  }
}

const DP_CLIPPING_NORM = 'dp/clipping_norm';

/** Wraps a strategy with client-level DP; `noise`: a seed (tests) or GaussianNoise.secure(). */
export function withDifferentialPrivacy(strategy: Strategy, privacy: PrivacyParameters, noise: number | GaussianNoise): DifferentiallyPrivateStrategy {
  if (!(strategy instanceof BaseStrategy)) throw new Error(`differential privacy cannot wrap '${strategy.name}'`);
  return new DifferentiallyPrivateStrategy(strategy, privacy, noise);
}
