import { aggregateMetrics } from './metrics';
import { sampleClients } from './sampling';
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
  ServerEvaluateFn,
  Strategy,
} from './strategy';
import { WeightMap } from './weights';

/** Where robust rules keep the updates they must hold until the end of the round. */
export interface SpillOptions {
  /** Bytes of update values held in memory; further updates go to temporary files. Default 1 GiB. */
  memoryBudgetBytes?: number;
  /** Directory for the temporary files; default the system's temporary directory. */
  directory?: string;
  /** Bytes read per coordinate block when combining (all updates' slices of one block together). Default 16 MiB. */
  blockBytes?: number;
}

/** How a strategy runs here, as opposed to its hyper-parameters (which the registry validates). */
export interface StrategyOptions {
  /** Seed of the client sampling (combined with the round and the phase). */
  seed?: number;
  /** Server-side evaluation on a held-out set, when the operator has one. */
  evaluateFn?: ServerEvaluateFn;
  /** Bound on the L2 norm of each update's difference to the global weights; larger updates are refused. */
  maxUpdateNorm?: number;
  spill?: SpillOptions;
}

export const DEFAULT_SAMPLING: SamplingParameters = {
  fraction_fit: 1.0,
  fraction_evaluate: 1.0,
  min_fit_clients: 2,
  min_evaluate_clients: 2,
  min_available_clients: 2,
};

/**
 * What every strategy shares: Flower's client sampling, evaluate aggregation
 * (loss and metrics weighted by examples), the all-at-once aggregateFit and
 * the server-side evaluate. A strategy adds its hyper-parameters, its fit
 * config and `beginFit`.
 */
export abstract class BaseStrategy<P extends SamplingParameters = SamplingParameters> implements Strategy {
  abstract readonly name: string;
  abstract readonly streaming: boolean;
  /** Clients chosen per round by configureFit: DP's fixed denominator. */
  protected readonly sampledPerRound = new Map<number, number>();

  constructor(
    readonly parameters: Readonly<P>,
    protected readonly options: StrategyOptions = {},
  ) {}

  /** Config entries this strategy sends to every fit client (FedProx's proximal_mu, ...). */
  fitConfig(_serverRound: number): ClientConfig {
    return {};
  }

  configureFit(serverRound: number, availableNodes: readonly string[], baseConfig: ClientConfig = {}): ClientInstruction[] {
    const p = this.parameters;
    const nodes = sampleClients(availableNodes, {
      phase: 'fit',
      fraction: p.fraction_fit,
      minClients: p.min_fit_clients,
      minAvailableClients: p.min_available_clients,
      serverRound,
      seed: this.options.seed ?? 0,
    });
    this.sampledPerRound.set(serverRound, nodes.length);
    const config = { ...baseConfig, ...this.fitConfig(serverRound) };
    return nodes.map((node) => ({ node, config: { ...config } }));
  }

  configureEvaluate(serverRound: number, availableNodes: readonly string[], baseConfig: ClientConfig = {}): ClientInstruction[] {
    const p = this.parameters;
    const nodes = sampleClients(availableNodes, {
      phase: 'evaluate',
      fraction: p.fraction_evaluate,
      minClients: p.min_evaluate_clients,
      minAvailableClients: p.min_available_clients,
      serverRound,
      seed: this.options.seed ?? 0,
    });
    return nodes.map((node) => ({ node, config: { ...baseConfig } }));
  }

  abstract beginFit(serverRound: number, current: WeightMap): FitAggregation;

  /** All results at once; a rejected update throws, as `add` does (the caller filters beforehand if it wants to go on). */
  aggregateFit(serverRound: number, current: WeightMap, results: FitRes[], _failures: Failure[] = []): AggregateFitResult {
    const agg = this.beginFit(serverRound, current);
    try {
      for (const r of results) agg.add(r);
      return agg.finish();
    } finally {
      agg.dispose();
    }
  }

  /** Flower's weighted_loss_avg, and every metric weighted by examples. Null without a usable answer. */
  aggregateEvaluate(_serverRound: number, results: EvaluateRes[], _failures: Failure[] = []): AggregateEvaluateResult | null {
    const usable = results.filter((r) => r.numExamples > 0 && Number.isFinite(r.loss));
    if (!usable.length) return null;
    let num = 0;
    let den = 0;
    for (const r of usable) {
      num += r.loss * r.numExamples;
      den += r.numExamples;
    }
    return { loss: num / den, metrics: aggregateMetrics(usable), examples: den };
  }

  evaluate(serverRound: number, parameters: WeightMap): { loss: number; metrics: Metrics } | null {
    return this.options.evaluateFn ? this.options.evaluateFn(serverRound, parameters) : null;
  }

  /** Clients configureFit chose for this round, if it was asked. */
  sampledClients(serverRound: number): number | undefined {
    return this.sampledPerRound.get(serverRound);
  }

  /** For a caller that samples the round's clients itself: how many it chose (DP's fixed denominator). */
  setSampledClients(serverRound: number, count: number): void {
    this.sampledPerRound.set(serverRound, count);
  }

  /** Options for update checks, given the global weights of the round. */
  limitsFor(current: WeightMap, result: FitRes) {
    return {
      maxExamples: result.registeredExamples,
      maxL2Norm: this.options.maxUpdateNorm,
      reference: this.options.maxUpdateNorm !== undefined ? current : undefined,
    };
  }
}
