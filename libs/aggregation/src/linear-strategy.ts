import { BaseStrategy } from './base-strategy';
import { MetricsAccumulator } from './metrics';
import { AggregateFitResult, FitAggregation, FitRes, SamplingParameters } from './strategy';
import { WeightedSum } from './fold/weighted-sum';
import { inSlices, runYielding } from './update-store';
import { AverageMap } from './weight-arithmetic';
import { checkUpdate, checkUpdateLayout, WeightMap } from './weights';

/** Values of one parameter a step takes at once before it lets the event loop run (about 0.1 s of work). */
export const STEP_SLICE_VALUES = 1 << 22;

/**
 * Strategies whose aggregate is the example-weighted average of the updates,
 * followed by a server step (identity for FedAvg, momentum for FedAvgM, an
 * adaptive optimiser for the FedOpt family). The average is folded in as
 * updates arrive (WeightedSum: float32, two buffers the size of the model),
 * whatever the number of workers.
 */
export abstract class LinearStrategy<P extends SamplingParameters = SamplingParameters> extends BaseStrategy<P> {
  readonly streaming = true;

  /**
   * The new global weights from the current ones and the round's average
   * (per parameter: float32 from the fold, float64 from differential privacy;
   * the step may keep or overwrite it). Stateful steps keep their state on
   * the strategy instance, one instance per task. Here the identity, the
   * average itself (FedAvg, FedProx); SteppingStrategy's steps override it.
   */
  serverStep(_serverRound: number, current: WeightMap, average: AverageMap): WeightMap {
    return toWeights(current, average);
  }

  /**
   * serverStep writing the new weights into `next` (arrays of the weights'
   * shapes: a large model's are views on the buffer it is sent from, so the
   * new weights need no copy), `sliceValues` values at a time, pausing after
   * each slice (runYielding lets the event loop run there; runToEnd does not
   * pause). The same operations as serverStep, so the same bits. Here the
   * identity step: the average rounded to float32, as toWeights does.
   */
  *stepInto(_serverRound: number, current: WeightMap, average: AverageMap, next: ReadonlyMap<string, Float32Array>, sliceValues = STEP_SLICE_VALUES): Generator<void, void> {
    for (const name of current.keys()) {
      const avg = average.get(name)!;
      const out = next.get(name)!;
      if (avg !== out) yield* inSlices(avg.length, sliceValues, (from, to) => out.set(avg.subarray(from, to), from));
    }
  }

  beginFit(serverRound: number, current: WeightMap): FitAggregation {
    return new LinearFitAggregation(current, (r) => this.limitsFor(current, r), (avg) => this.serverStep(serverRound, current, avg));
  }
}

/** Computes values from..to-1 of one parameter's new weights into `next`, which may be `avg` itself (each value is read before it is written). */
export type StepKernel = (name: string, w: Float32Array, avg: Float32Array | Float64Array, next: Float32Array, from: number, to: number) => void;

/**
 * A linear strategy whose server step is a kernel over ranges of one
 * parameter's values (FedAvgM, the FedOpt family): `serverStep` runs it into
 * new arrays; `stepInPlace` writes the new weights over the round's float32
 * average itself, the same operations, so the same bits, without a second
 * copy of the model (large models, aggregated in place). `stepInPlace` goes a
 * slice of values at a time and lets the event loop run between slices: a
 * step over a 1 GiB model takes seconds, longer than the broker waits for a
 * heartbeat. FedAvg and FedProx need no step at all.
 */
export abstract class SteppingStrategy<P extends SamplingParameters = SamplingParameters> extends LinearStrategy<P> {
  /** Readies the state for one step over `current` (allocated at the first, checked against the layout) and returns the step's kernel. */
  protected abstract beginStep(current: WeightMap): StepKernel;

  serverStep(_serverRound: number, current: WeightMap, average: AverageMap): WeightMap {
    const kernel = this.beginStep(current);
    const out: WeightMap = new Map();
    for (const [name, t] of current) {
      const next = new Float32Array(t.data.length);
      kernel(name, t.data, average.get(name)!, next, 0, t.data.length);
      out.set(name, { shape: [...t.shape], data: next });
    }
    return out;
  }

  *stepInto(_serverRound: number, current: WeightMap, average: AverageMap, next: ReadonlyMap<string, Float32Array>, sliceValues = STEP_SLICE_VALUES): Generator<void, void> {
    const kernel = this.beginStep(current);
    for (const [name, t] of current) {
      const avg = average.get(name)!;
      const out = next.get(name)!;
      yield* inSlices(t.data.length, sliceValues, (from, to) => kernel(name, t.data, avg, out, from, to));
    }
  }

  /** The step written over the round's float32 average, letting the event loop run between slices. */
  stepInPlace(serverRound: number, current: WeightMap, average: ReadonlyMap<string, Float32Array>, sliceValues = STEP_SLICE_VALUES): Promise<void> {
    return runYielding(this.stepInto(serverRound, current, average, average, sliceValues));
  }
}

/** Weighted fold of updates as they arrive (WeightedSum); `finish` divides and hands the average to the server step. */
export class LinearFitAggregation implements FitAggregation {
  private sum: WeightedSum | null;
  private total = 0;
  private count = 0;
  private readonly metrics = new MetricsAccumulator();

  constructor(
    private readonly current: WeightMap,
    private readonly limits: (r: FitRes) => Parameters<typeof checkUpdate>[3],
    private readonly step: (average: AverageMap) => WeightMap,
  ) {
    this.sum = new WeightedSum(current);
  }

  get updates(): number {
    return this.count;
  }

  get examples(): number {
    return this.total;
  }

  add(result: FitRes): void {
    const sum = this.live();
    const limits = this.limits(result);
    // The fold itself refuses values that are not finite, changing nothing; only a norm bound needs a pass of its own.
    if (limits?.maxL2Norm !== undefined) checkUpdate(this.current, result.parameters, result.numExamples, limits);
    else checkUpdateLayout(this.current, result.parameters, result.numExamples, limits);
    const w = result.numExamples;
    sum.add(result.parameters, w);
    this.total += w;
    this.count++;
    this.metrics.add(w, result.metrics);
  }

  finish(): AggregateFitResult {
    const sum = this.live();
    if (this.count === 0) throw new Error('no update to aggregate');
    const average = sum.mean(this.total);
    sum.dispose(); // before the server step allocates its own; the next round reuses it
    this.sum = null;
    const parameters = this.step(average);
    return { parameters, metrics: this.metrics.result(), updates: this.count, examples: this.total };
  }

  dispose(): void {
    this.sum?.dispose();
    this.sum = null;
  }

  private live(): WeightedSum {
    if (!this.sum) throw new Error('this aggregation is finished');
    return this.sum;
  }
}

/**
 * Weights with the template's shapes from a round's average: float32 arrays
 * are taken over as they are (the fold's average is fresh), float64 ones
 * (differential privacy's) rounded.
 */
export function toWeights(template: WeightMap, values: AverageMap): WeightMap {
  const out: WeightMap = new Map();
  for (const [name, t] of template) {
    const v = values.get(name)!;
    out.set(name, { shape: [...t.shape], data: v instanceof Float32Array ? v : Float32Array.from(v) });
  }
  return out;
}
