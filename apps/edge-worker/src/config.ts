import { IsIn, IsInt, IsNumber, IsOptional, IsString, Matches, Max, Min } from 'class-validator';
import { WORD_PATTERN } from '@fl/contracts';
import { BaseConfig } from '@fl/runtime';

export class EdgeWorkerConfig extends BaseConfig {
  /** This site's name: its queue is fl.worker.<name>. */
  @Matches(WORD_PATTERN, { message: 'NODE_NAME must be 1-64 letters, digits, _ or -' }) NODE_NAME: string;
  /** A CSV file or a folder of CSV files: the site's data, which never leaves it. */
  @IsString() DATA_PATH: string;
  /** Comma-separated use cases to serve; default: every use case whose columns the data has. */
  @IsOptional() @Matches(/^[A-Za-z0-9_-]+(,[A-Za-z0-9_-]+)*$/, { message: 'USE_CASES must be a comma-separated list of use case names' }) USE_CASES?: string;
  @IsNumber() @Min(0.1) @Max(3600) HEARTBEAT_INTERVAL_S = 10;
  /** Seed of the train/test split; keep it fixed so the held-out rows stay held out. */
  @IsInt() @Min(0) SPLIT_SEED = 0;
  @IsInt() @Min(1) @Max(64) ORT_THREADS = 1;
  /** Port of /health/live, /health/ready and /metrics; 0: no listener. */
  @IsInt() @Min(0) @Max(65535) HEALTH_PORT = 8081;
  /** `skip`: a fit answers with the weights it received, untrained (load tests of the transfer and aggregation of large models). */
  @IsIn(['run', 'skip']) TRAINING: 'run' | 'skip' = 'run';
}

/** The worker's own queue, bound to its name, every worker's messages and its use cases. */
export const workerQueue = (node: string) => `fl.worker.${node}`;

export const WORKER_CONFIG = Symbol('WORKER_CONFIG');
export const SITE_SPLITS = Symbol('SITE_SPLITS');
