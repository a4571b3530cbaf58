import {
  Column,
  CreateDateColumn,
  Entity,
  PrimaryGeneratedColumn,
  UpdateDateColumn,
} from 'typeorm';

export const TASK_STATUSES = ['pending', 'running', 'success', 'failed', 'cancelled'] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];

/** gateway.tasks — a training task as the user sees it. Written only by the gateway. */
@Entity({ schema: 'gateway', name: 'tasks' })
export class TaskEntity {
  @PrimaryGeneratedColumn({ type: 'integer' })
  id: number;

  @Column({ name: 'user_id', type: 'text' })
  userId: string;

  @Column({ name: 'use_case', type: 'text' })
  useCase: string;

  @Column({ name: 'model_name', type: 'text' })
  modelName: string;

  @Column({ name: 'model_version', type: 'integer' })
  modelVersion: number;

  @Column({ name: 'num_global_iterations', type: 'integer' })
  numGlobalIterations: number;

  @Column({ name: 'run_name', type: 'text', nullable: true })
  runName: string | null;

  @Column({ name: 'experiment_name', type: 'text', nullable: true })
  experimentName: string | null;

  @Column({ type: 'jsonb', default: () => "'{}'::jsonb" })
  settings: Record<string, unknown>;

  @Column({
    type: 'enum',
    enum: TASK_STATUSES as unknown as string[],
    enumName: 'task_status',
    default: 'pending',
  })
  status: TaskStatus;

  @Column({ type: 'text', nullable: true })
  reason: string | null;

  @Column({ name: 'current_round', type: 'integer', default: 0 })
  currentRound: number;

  @Column({ type: 'jsonb', nullable: true })
  metrics: Record<string, unknown> | null;

  @Column({ name: 'result_model_name', type: 'text', nullable: true })
  resultModelName: string | null;

  @Column({ name: 'result_model_version', type: 'integer', nullable: true })
  resultModelVersion: number | null;

  @Column({ name: 'cancel_requested_at', type: 'timestamptz', nullable: true })
  cancelRequestedAt: Date | null;

  /** Of the request that created the task; it follows the task into every app's logs. */
  @Column({ name: 'correlation_id', type: 'text', nullable: true })
  correlationId: string | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;

  @Column({ name: 'started_at', type: 'timestamptz', nullable: true })
  startedAt: Date | null;

  @Column({ name: 'finished_at', type: 'timestamptz', nullable: true })
  finishedAt: Date | null;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt: Date;
}

/**
 * gateway.task_events — progress events received for a task.
 *
 * NOTE: `id` is bigserial; the pg driver returns int8 as a *string* (it may exceed
 * 2^53), so `id` is typed `string`. Compare/sort on the server side, not in JS.
 * Unique on (task_id, type, coalesce(round, -1)): insert with
 * `.orIgnore()` / `ON CONFLICT DO NOTHING` to drop redelivered events.
 */
@Entity({ schema: 'gateway', name: 'task_events' })
export class TaskEventEntity {
  @PrimaryGeneratedColumn({ type: 'bigint' })
  id: string;

  @Column({ name: 'task_id', type: 'integer' })
  taskId: number;

  @Column({ type: 'text' })
  type: string;

  @Column({ type: 'integer', nullable: true })
  round: number | null;

  @Column({ type: 'jsonb', default: () => "'{}'::jsonb" })
  payload: Record<string, unknown>;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;
}
