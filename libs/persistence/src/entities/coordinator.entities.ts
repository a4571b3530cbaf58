import {
  Column,
  CreateDateColumn,
  Entity,
  PrimaryColumn,
  UpdateDateColumn,
} from 'typeorm';

export type TaskRunState = 'queued' | 'running' | 'finished';

/** coordinator.task_runs — the coordinator's lease row per task. */
@Entity({ schema: 'coordinator', name: 'task_runs' })
export class TaskRunEntity {
  @PrimaryColumn({ name: 'task_id', type: 'integer' })
  taskId: number;

  @Column({ type: 'jsonb' })
  spec: Record<string, unknown>;

  @Column({ type: 'text', nullable: true })
  owner: string | null;

  @Column({ name: 'lease_expires_at', type: 'timestamptz', nullable: true })
  leaseExpiresAt: Date | null;

  @Column({ type: 'text', default: 'queued' })
  state: TaskRunState;

  @Column({ type: 'text', nullable: true })
  outcome: string | null;

  @Column({ name: 'cancel_requested', type: 'boolean', default: false })
  cancelRequested: boolean;

  @Column({ name: 'current_round', type: 'integer', default: 0 })
  currentRound: number;

  /** The task's parent run in the experiment tracker. */
  @Column({ name: 'tracking_run_id', type: 'text', nullable: true })
  trackingRunId: string | null;

  /** Child run id per edge worker. */
  @Column({ name: 'tracking_child_runs', type: 'jsonb', default: () => "'{}'::jsonb" })
  trackingChildRuns: Record<string, string>;

  /** Standardisation statistics computed from the sites' sums before round 1 (models with federated statistics). */
  @Column({ type: 'jsonb', nullable: true })
  standardization: { mean: number[]; std: number[]; examples: number; sites: number } | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt: Date;
}

/** Examples a node holds per use case. */
export type NodeExamples = Record<string, { train: number; test: number }>;

/** coordinator.nodes — edge workers seen by the coordinator. */
@Entity({ schema: 'coordinator', name: 'nodes' })
export class NodeEntity {
  @PrimaryColumn({ type: 'text' })
  name: string;

  @Column({ name: 'use_cases', type: 'text', array: true })
  useCases: string[];

  @Column({ type: 'jsonb', default: () => "'{}'::jsonb" })
  examples: NodeExamples;

  @Column({ type: 'text', default: 'online' })
  status: string;

  @CreateDateColumn({ name: 'registered_at', type: 'timestamptz' })
  registeredAt: Date;

  @Column({ name: 'last_seen_at', type: 'timestamptz', default: () => 'now()' })
  lastSeenAt: Date;

  @Column({ type: 'jsonb', default: () => "'{}'::jsonb" })
  info: Record<string, unknown>;
}

/** `cancelled`: the task was cancelled while the round ran. */
export type RoundStatus = 'running' | 'completed' | 'failed' | 'cancelled';

/** coordinator.rounds — one row per federated round. */
@Entity({ schema: 'coordinator', name: 'rounds' })
export class RoundEntity {
  @PrimaryColumn({ name: 'task_id', type: 'integer' })
  taskId: number;

  @PrimaryColumn({ type: 'integer' })
  round: number;

  @Column({ type: 'text' })
  status: RoundStatus;

  @Column({ type: 'integer', default: 0 })
  participants: number;

  @Column({ type: 'integer', default: 0 })
  examples: number;

  @Column({ name: 'train_loss', type: 'double precision', nullable: true })
  trainLoss: number | null;

  @Column({ name: 'eval_loss', type: 'double precision', nullable: true })
  evalLoss: number | null;

  @Column({ name: 'eval_accuracy', type: 'double precision', nullable: true })
  evalAccuracy: number | null;

  @Column({ name: 'eval_examples', type: 'integer', nullable: true })
  evalExamples: number | null;

  @Column({ name: 'started_at', type: 'timestamptz', default: () => 'now()' })
  startedAt: Date;

  @Column({ name: 'finished_at', type: 'timestamptz', nullable: true })
  finishedAt: Date | null;

  @Column({ name: 'duration_ms', type: 'integer', nullable: true })
  durationMs: number | null;
}

export type ParticipantPhase = 'fit' | 'evaluate';
export type ParticipantStatus = 'selected' | 'received' | 'rejected' | 'missing' | 'failed';

/** coordinator.round_participants — what each selected node did in a round phase. */
@Entity({ schema: 'coordinator', name: 'round_participants' })
export class RoundParticipantEntity {
  @PrimaryColumn({ name: 'task_id', type: 'integer' })
  taskId: number;

  @PrimaryColumn({ type: 'integer' })
  round: number;

  @PrimaryColumn({ name: 'node_name', type: 'text' })
  nodeName: string;

  @PrimaryColumn({ type: 'text' })
  phase: ParticipantPhase;

  @Column({ type: 'text' })
  status: ParticipantStatus;

  @Column({ type: 'integer', nullable: true })
  examples: number | null;

  @Column({ type: 'double precision', nullable: true })
  loss: number | null;

  @Column({ type: 'double precision', nullable: true })
  accuracy: number | null;

  @Column({ type: 'text', nullable: true })
  reason: string | null;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt: Date;
}

/** coordinator.checkpoints — global weights (safetensors bytes) after each round. */
@Entity({ schema: 'coordinator', name: 'checkpoints' })
export class CheckpointEntity {
  @PrimaryColumn({ name: 'task_id', type: 'integer' })
  taskId: number;

  @PrimaryColumn({ type: 'integer' })
  round: number;

  @Column({ type: 'bytea' })
  weights: Buffer;

  @Column({ type: 'text' })
  sha256: string;

  /** The strategy's server-side state after the round (safetensors bytes); null when it has none. */
  @Column({ name: 'strategy_state', type: 'bytea', nullable: true })
  strategyState: Buffer | null;

  /** Large weights are stored in coordinator.checkpoint_chunks, in this many rows; 0: in `weights`. */
  @Column({ type: 'integer', default: 0 })
  pieces: number;

  /** A large strategy state is stored in coordinator.checkpoint_chunks after the weights' pieces, in this many rows; 0: in `strategy_state`. */
  @Column({ name: 'state_pieces', type: 'integer', default: 0 })
  statePieces: number;

  /** SHA-256 of the strategy state, checked when it is read back; null: no state, or stored before states had one. */
  @Column({ name: 'state_sha256', type: 'text', nullable: true })
  stateSha256: string | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;
}
