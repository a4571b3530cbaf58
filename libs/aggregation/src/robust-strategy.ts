import { BaseStrategy } from './base-strategy';
import { MetricsAccumulator } from './metrics';
import { ModelLayout } from './model-layout';
import { AggregateFitResult, FitAggregation, FitRes, SamplingParameters } from './strategy';
import { runToEnd, runYielding, UpdateStore } from './update-store';
import { checkUpdate, WeightMap } from './weights';

export const DEFAULT_MEMORY_BUDGET_BYTES = 1024 ** 3;
export const DEFAULT_BLOCK_BYTES = 16 * 1024 ** 2;

/** What a robust rule computes from the stored updates. */
export interface RobustOutcome {
  flat: Float32Array;
  /** Indices (arrival order) of the updates the rule kept, for rules that pick. */
  selected?: number[];
}

/**
 * Strategies that need every update of the round before they can combine
 * them (median, trimmed mean, Krum, Bulyan). Updates are kept in an
 * UpdateStore (memory up to the budget, then temporary files) and the rule
 * works on blocks of coordinates.
 */
export abstract class RobustStrategy<P extends SamplingParameters = SamplingParameters> extends BaseStrategy<P> {
  readonly streaming = false;

  /** Combines the stored updates, reading them `blockValues` coordinates at a time, pausing after each block (UpdateStore.blocks). */
  abstract combine(store: UpdateStore, blockValues: number): Generator<void, RobustOutcome>;

  /**
   * The aggregation keeps the global weights only where a norm bound measures
   * updates against them; otherwise only their layout, so that a caller can
   * let a large model's weights go while the updates come in.
   */
  beginFit(_serverRound: number, current: WeightMap): FitAggregation {
    const spill = this.options.spill ?? {};
    const store = new UpdateStore(new ModelLayout(current), {
      memoryBudgetBytes: spill.memoryBudgetBytes ?? DEFAULT_MEMORY_BUDGET_BYTES,
      directory: spill.directory,
    });
    const template = this.options.maxUpdateNorm !== undefined ? current : layoutOf(current);
    return new StoredFitAggregation(template, store, spill.blockBytes ?? DEFAULT_BLOCK_BYTES, (r) => this.limitsFor(template, r), (s, b) => this.combine(s, b));
  }
}

/** A template with the weights' names and shapes and no values (layout checks read only shapes). */
function layoutOf(current: WeightMap): WeightMap {
  return new Map([...current].map(([name, t]) => [name, { shape: [...t.shape], data: new Float32Array(0) }]));
}

class StoredFitAggregation implements FitAggregation {
  private readonly nodes: string[] = [];
  private total = 0;
  private done = false;
  private readonly metrics = new MetricsAccumulator();

  constructor(
    /** The global weights where a norm bound needs them, else their layout alone (layoutOf). */
    private readonly template: WeightMap,
    private readonly store: UpdateStore,
    private readonly blockBytes: number,
    private readonly limits: (r: FitRes) => Parameters<typeof checkUpdate>[3],
    private readonly rule: (store: UpdateStore, blockValues: number) => Generator<void, RobustOutcome>,
  ) {}

  get updates(): number {
    return this.nodes.length;
  }

  get examples(): number {
    return this.total;
  }

  add(result: FitRes): void {
    if (this.done) throw new Error('this aggregation is finished');
    checkUpdate(this.template, result.parameters, result.numExamples, this.limits(result));
    this.store.add(result.parameters, result.numExamples);
    this.nodes.push(result.node);
    this.total += result.numExamples;
    this.metrics.add(result.numExamples, result.metrics);
  }

  finish(): AggregateFitResult {
    const blockValues = this.begin();
    try {
      return this.result(runToEnd(this.rule(this.store, blockValues)));
    } finally {
      this.store.dispose();
    }
  }

  /** finish, letting the event loop run between blocks: for large models, whose rule takes seconds. */
  async finishAsync(): Promise<AggregateFitResult> {
    const blockValues = this.begin();
    try {
      return this.result(await runYielding(this.rule(this.store, blockValues)));
    } finally {
      this.store.dispose();
    }
  }

  /** Marks the aggregation finished; the coordinates per block, so that a block of every update is about blockBytes. */
  private begin(): number {
    if (this.done) throw new Error('this aggregation is finished');
    if (this.nodes.length === 0) throw new Error('no update to aggregate');
    this.done = true;
    return Math.max(1024, Math.floor(this.blockBytes / (Float32Array.BYTES_PER_ELEMENT * this.nodes.length)));
  }

  private result({ flat, selected }: RobustOutcome): AggregateFitResult {
    return {
      parameters: this.store.layout.unflatten(flat),
      metrics: this.metrics.result(),
      updates: this.nodes.length,
      examples: this.total,
      ...(selected ? { selectedNodes: selected.map((i) => this.nodes[i]) } : {}),
    };
  }

  dispose(): void {
    this.done = true;
    this.store.dispose();
  }
}
