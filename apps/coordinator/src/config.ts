import { hostname } from 'node:os';
import { IsIn, IsInt, IsNumber, IsOptional, IsString, Matches, Max, Min } from 'class-validator';
import { WORD_PATTERN } from '@fl/contracts';
import { RabbitMqBusOptions } from '@fl/messaging';
import { BaseConfig } from '@fl/runtime';

const defaultId = `coordinator-${hostname().replace(/[^A-Za-z0-9_-]/g, '-')}`.slice(0, 64);

export class CoordinatorConfig extends BaseConfig {
  /** Names this coordinator's queue (fl.coordinator.<id>) and its leases; stable across restarts. */
  @Matches(WORD_PATTERN) COORDINATOR_ID = defaultId;
  /** A task's lease lapses this long after its coordinator's last renewal; another may then take the task over. */
  @IsNumber() @Min(1) @Max(3600) LEASE_TTL_S = 30;
  /** A worker counts as online for this long after its last heartbeat. */
  @IsNumber() @Min(1) @Max(3600) NODE_ONLINE_WINDOW_S = 30;
  /** How long a round waits for min_fit_clients workers to be online before the task fails. */
  @IsNumber() @Min(0) @Max(86400) WORKER_WAIT_S = 60;
  /** How often unclaimed and orphaned tasks are looked for, and deleted tasks whose records wait for their purge. */
  @IsNumber() @Min(0.1) @Max(3600) SWEEP_INTERVAL_S = 5;
  /** Port of /health/live, /health/ready and /metrics; 0: no listener. */
  @IsInt() @Min(0) @Max(65535) HEALTH_PORT = 8081;
  /** Times a round short of answers (min_fit_clients updates, or any evaluation) is run again before its task fails. */
  @IsInt() @Min(0) @Max(100) ROUND_RETRIES = 2;
  /**
   * on: a round's evaluation travels with the next round's fit (one instruction and one answer per
   * site and round, instead of two), where every site asked to evaluate also fits next round and the
   * model is below LARGE_MODEL_BYTES; a round's end is then stored when the next round's updates
   * come in. off: each round's evaluation is its own phase.
   */
  @IsIn(['on', 'off']) CHAINED_EVALUATION: 'on' | 'off' = 'on';
  /**
   * A task's round events to the gateway go at most this often: the rounds that complete meanwhile
   * go together, in one rounds.completed event (a lone round stays a round.completed). Quick rounds
   * otherwise cost an event, a gateway write and a broker delivery each. 0: one round.completed per
   * round, as earlier releases send, for a gateway of a release before rounds.completed (which
   * dead-letters it) while it is being upgraded.
   */
  @IsInt() @Min(0) @Max(60_000) ROUND_EVENTS_WINDOW_MS = 250;
  /**
   * broker: a site's message is accepted only when RabbitMQ vouches (user_id) that it comes from that
   * site's own broker user, `<node><SITE_USER_SUFFIX>`; none: trust the node name in the payload
   * (one shared broker user, development only).
   */
  @IsIn(['broker', 'none']) SITE_AUTH: 'broker' | 'none' = 'broker';
  /** Tries at registering a trained model before the task fails (the weights stay in the checkpoint). */
  @IsInt() @Min(1) @Max(100) REGISTRATION_ATTEMPTS = 5;
  /** Wait before the second try; it doubles for each further one (2, 4, 8, 16 s by default). */
  @IsNumber() @Min(0) @Max(3600) REGISTRATION_RETRY_S = 2;
  /**
   * Models of at least this many bytes are held as few times as possible: FedAvg, FedProx, FedAvgM
   * and the FedOpt family (without central DP) fold in place into one float32 sum (FedAvgM and
   * FedOpt then step it in place, their state shared with the strategy, not copied), and the
   * package and (FedAvg and FedProx without an update norm bound) the global weights are let go
   * while the updates come in (read back from the checkpoint
   * or the registry if the round runs again). The rules that need every update at once (FedMedian,
   * FedTrimmedAvg, Krum, Bulyan) hold at most this many bytes of updates in memory, whatever the
   * model's size, and write the others to AGGREGATION_SPILL_DIR.
   */
  @IsInt() @Min(0) LARGE_MODEL_BYTES = 256 * 1024 * 1024;
  /**
   * Where updates beyond LARGE_MODEL_BYTES wait on disk: those FedMedian, FedTrimmedAvg, Krum and
   * Bulyan hold (removed after each round), and chunked ones received while another is in memory
   * (removed once read in). Unset: the system's temporary directory.
   */
  @IsOptional() @IsString() AGGREGATION_SPILL_DIR?: string;
  /**
   * Bytes of chunked messages being received at once, in memory and in AGGREGATION_SPILL_DIR
   * together; the first chunk of one more is refused (dead-lettered, the site's update missing from
   * its round). A round's updates arrive together: a round of N sites needs N times the model (a
   * 1 GiB model with 12 sites, 12 GiB), and one more for a site that sends its update again.
   */
  @IsInt() @Min(1) REASSEMBLY_MAX_BYTES = 16 * 1024 ** 3;
  /**
   * A database outage longer than this (as this coordinator measures it, to within SWEEP_INTERVAL_S)
   * fails the tasks that ran through it, once the database is back, instead of resuming them.
   */
  @IsNumber() @Min(0) @Max(7 * 86_400) DATABASE_OUTAGE_MAX_S = 300;
  /**
   * Checkpoints kept per task: the last N rounds' (a task resumes from its last one, and a round run
   * again starts from it); older ones are deleted with each new one. 0 (the default) keeps every
   * round's, a history of the weights; each is the model's size, so large models want a small N.
   */
  @IsInt() @Min(0) @Max(100_000) CHECKPOINTS_KEPT = 0;
  /**
   * The operator's held-out data (a CSV file or a folder of them, as a site's DATA_PATH): each
   * round's new global weights are also evaluated on its rows of the task's use case. Unset: none.
   */
  @IsOptional() @IsString() SERVER_EVAL_DATA?: string;
}

/**
 * The coordinator's bus settings beyond the common ones: chunked updates of large models are held
 * in memory one at a time (LARGE_MODEL_BYTES), the others wait in AGGREGATION_SPILL_DIR, up to
 * REASSEMBLY_MAX_BYTES in all.
 */
export function coordinatorBusOptions(config: CoordinatorConfig): RabbitMqBusOptions {
  return {
    reassemblyMemoryBytes: config.LARGE_MODEL_BYTES,
    maxReassemblyBytes: config.REASSEMBLY_MAX_BYTES,
    ...(config.AGGREGATION_SPILL_DIR ? { reassemblySpillDir: config.AGGREGATION_SPILL_DIR } : {}),
  };
}
