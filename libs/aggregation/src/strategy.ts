import { WeightMap } from './weights';

export type ConfigValue = number | string | boolean;
/** What a worker is told for one fit or evaluate call (Flower's FitIns/EvaluateIns config). */
export type ClientConfig = Record<string, ConfigValue>;
export type Metrics = Record<string, number>;

/** One chosen worker and its instructions; the coordinator sends the global weights beside them. */
export interface ClientInstruction {
  node: string;
  config: ClientConfig;
}

/** One worker's answer to fit (Flower's FitRes). */
export interface FitRes {
  node: string;
  parameters: WeightMap;
  numExamples: number;
  metrics?: Metrics;
  /** Examples the worker registered; a larger `numExamples` is refused. */
  registeredExamples?: number;
}

/** One worker's answer to evaluate (Flower's EvaluateRes). */
export interface EvaluateRes {
  node: string;
  loss: number;
  numExamples: number;
  metrics?: Metrics;
}

/** A worker that failed or whose answer was refused. */
export interface Failure {
  node: string;
  reason: string;
}

export interface AggregateFitResult {
  parameters: WeightMap;
  /** Fit metrics weighted by examples, plus what the strategy itself reports (for example the clipping norm). */
  metrics: Metrics;
  /** Updates that went into the aggregate. */
  updates: number;
  examples: number;
  /** Rules that pick updates (Krum, Multi-Krum, Bulyan): the nodes whose updates were kept. */
  selectedNodes?: string[];
}

export interface AggregateEvaluateResult {
  loss: number;
  metrics: Metrics;
  examples: number;
}

/**
 * One round's fit aggregation. Results are added as they arrive; a bad one
 * throws UpdateRejectedError and changes nothing. `finish` gives the new global
 * weights and releases what the aggregation held (memory, spill files);
 * `dispose` releases them when the round is abandoned.
 */
export interface FitAggregation {
  add(result: FitRes): void;
  /**
   * The same as `add`, letting the event loop run between slices of
   * `sliceValues` values (STEP_SLICE_VALUES unless given), where checking and
   * adding an update would otherwise hold it in one stretch (QFedAvg and
   * central differential privacy over a large model: about a second per GiB
   * here, while the connection's heartbeats wait). The same sums to the bit as `add`; a bad update
   * rejects with UpdateRejectedError and changes nothing. Calls are taken one
   * after another, in the order made; `add`, `finish` and `finishAsync` throw
   * while one is under way.
   */
  addAsync?(result: FitRes, sliceValues?: number): Promise<void>;
  readonly updates: number;
  readonly examples: number;
  finish(): AggregateFitResult;
  /**
   * The same as `finish`, letting the event loop run as it goes, where the
   * aggregation can take seconds (a large model). Aggregations that can
   * (QFedAvg, central differential privacy) write the new weights into
   * `into` where it is given, so that they need no copy to be sent: the
   * result's arrays are then `into`'s own. `sliceValues`: values taken at
   * once before the event loop runs (STEP_SLICE_VALUES unless given).
   */
  finishAsync?(into?: WeightArrays, sliceValues?: number): Promise<AggregateFitResult>;
  /**
   * Touches the memory the aggregation fills as updates arrive (QFedAvg's and
   * central DP's float64 sums), a slice at a time, letting the event loop run:
   * the first touch of a fresh buffer costs the kernel's page faults, about
   * 5 ms per MB here, 11 s for the sums of a 1 GiB model, which would
   * otherwise fall on the first update in one stretch (the broker drops a
   * connection whose heartbeats stop for 10 s). Values are left as they are:
   * it may run while updates are added.
   */
  prefault?(sliceValues?: number): Promise<void>;
  dispose(): void;
}

/** One float32 array per parameter, by name: where a large model's new weights are written (views on the buffer they are sent from). */
export type WeightArrays = ReadonlyMap<string, Float32Array>;

/** A held-out evaluation run by the coordinator itself (Flower's evaluate_fn). */
export type ServerEvaluateFn = (serverRound: number, parameters: WeightMap) => { loss: number; metrics: Metrics } | null;

/** Flower's client sampling parameters, same names and defaults. */
export interface SamplingParameters {
  fraction_fit: number;
  fraction_evaluate: number;
  min_fit_clients: number;
  min_evaluate_clients: number;
  min_available_clients: number;
}

/**
 * An aggregation strategy, after Flower's Strategy: configure fit, aggregate
 * fit, configure evaluate, aggregate evaluate, and an optional server-side
 * evaluate. Aggregating fit is split in `beginFit` + `add` so that linear
 * strategies fold each update in as it arrives; `aggregateFit` is the
 * all-at-once form on top of it.
 */
export interface Strategy {
  /** The registry name, e.g. 'FedAvg'. */
  readonly name: string;
  /** Every hyper-parameter after defaults were applied. */
  readonly parameters: Readonly<SamplingParameters>;
  /** True when `add` folds updates in (memory independent of the number of workers). */
  readonly streaming: boolean;
  configureFit(serverRound: number, availableNodes: readonly string[], baseConfig?: ClientConfig): ClientInstruction[];
  /**
   * What configureFit adds to every worker's config (FedProx's proximal_mu,
   * QFedAvg's request for loss_before_fit, ...), for a caller that samples the
   * round's workers itself.
   */
  fitConfig(serverRound: number): ClientConfig;
  beginFit(serverRound: number, current: WeightMap): FitAggregation;
  aggregateFit(serverRound: number, current: WeightMap, results: FitRes[], failures?: Failure[]): AggregateFitResult;
  configureEvaluate(serverRound: number, availableNodes: readonly string[], baseConfig?: ClientConfig): ClientInstruction[];
  aggregateEvaluate(serverRound: number, results: EvaluateRes[], failures?: Failure[]): AggregateEvaluateResult | null;
  evaluate(serverRound: number, parameters: WeightMap): { loss: number; metrics: Metrics } | null;
}
