import { IsIn, IsInt, IsOptional, IsString, Matches, Max, Min } from 'class-validator';
import { BaseConfig } from '@fl/runtime';

/**
 * The simulator's own settings. Everything an edge worker reads (USE_CASES,
 * HEARTBEAT_INTERVAL_S, SPLIT_SEED, ORT_THREADS, ...) is read as the edge
 * worker reads it and given to every virtual worker.
 */
export class SimulatorConfig extends BaseConfig {
  /** Virtual edge workers in this process, named `<SIM_NODE_PREFIX>-1` .. `<SIM_NODE_PREFIX>-<K>`. */
  @IsInt() @Min(1) @Max(10_000) SIMULATED_WORKERS = 10;
  /** Their names' prefix; run several simulators (or processes) side by side with different prefixes. */
  @Matches(/^[A-Za-z0-9_-]{1,50}$/, { message: 'SIM_NODE_PREFIX must be 1-50 letters, digits, _ or -' }) SIM_NODE_PREFIX = 'sim';
  /** A CSV file or a folder of them; each use case is dealt from the first file with its columns. Default: the shipped data sets. */
  @IsOptional() @IsString() DATA_PATH?: string;
  /** How each use case's rows are dealt: iid, label:<classes per worker>, dirichlet:<alpha>, or copy (every worker holds every row). */
  @Matches(/^(iid|copy|label:[1-9]\d*|dirichlet:(\d+(\.\d*)?|\.\d+)(e-?\d+)?)$/, {
    message: 'SIM_PARTITION must be iid, copy, label:<classes per worker> or dirichlet:<alpha>',
  })
  SIM_PARTITION = 'iid';
  /** Seed of the dealing (SPLIT_SEED still seeds each worker's train/test split). */
  @IsInt() @Min(0) SIM_SEED = 42;
  /** onnx: train and evaluate as an edge worker does; zero: fit returns the global weights unchanged, evaluation reports 0 (for scale tests). */
  @IsIn(['onnx', 'zero']) SIM_COMPUTE: 'onnx' | 'zero' = 'onnx';
  /** Comma-separated `<node>:<mode>` with mode sign-flip, scale:<factor> or noise:<std>: what those virtual workers do to their updates. */
  @IsOptional()
  @Matches(/^[A-Za-z0-9_-]+:[a-z-]+(:[-+0-9.e]+)?(,[A-Za-z0-9_-]+:[a-z-]+(:[-+0-9.e]+)?)*$/, {
    message: 'SIM_HOSTILE must be a comma-separated list of <node>:<mode>, e.g. sim-3:sign-flip,sim-7:scale:10',
  })
  SIM_HOSTILE?: string;
  /** Virtual workers per broker connection (each has two queues, so two channels; RabbitMQ allows 2047 per connection). */
  @IsInt() @Min(1) @Max(1000) SIM_WORKERS_PER_CONNECTION = 250;
}
