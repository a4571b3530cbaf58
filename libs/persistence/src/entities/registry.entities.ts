import {
  Column,
  CreateDateColumn,
  Entity,
  PrimaryColumn,
  UpdateDateColumn,
} from 'typeorm';

/** registry.registered_models — one row per model name (built-in registry). */
@Entity({ schema: 'registry', name: 'registered_models' })
export class RegisteredModelEntity {
  @PrimaryColumn({ type: 'text' })
  name: string;

  @Column({ type: 'text', nullable: true })
  description: string | null;

  @Column({ type: 'jsonb', default: () => "'{}'::jsonb" })
  tags: Record<string, string>;

  /** alias -> version */
  @Column({ type: 'jsonb', default: () => "'{}'::jsonb" })
  aliases: Record<string, number>;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt: Date;
}

/** registry.model_versions — an immutable version of a model (artifacts live at `source`). */
@Entity({ schema: 'registry', name: 'model_versions' })
export class ModelVersionEntity {
  @PrimaryColumn({ type: 'text' })
  name: string;

  @PrimaryColumn({ type: 'integer' })
  version: number;

  @Column({ type: 'text' })
  source: string;

  @Column({ name: 'run_id', type: 'text', nullable: true })
  runId: string | null;

  @Column({ type: 'jsonb', default: () => "'{}'::jsonb" })
  tags: Record<string, string>;

  @Column({ type: 'text', nullable: true })
  description: string | null;

  @Column({ type: 'text', default: 'READY' })
  status: string;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;
}

export type RunStatus = 'RUNNING' | 'FINISHED' | 'FAILED' | 'KILLED';

/** registry.runs — experiment-tracking runs (MLflow semantics). */
@Entity({ schema: 'registry', name: 'runs' })
export class RunEntity {
  @PrimaryColumn({ type: 'text' })
  id: string;

  @Column({ name: 'experiment_name', type: 'text' })
  experimentName: string;

  @Column({ name: 'run_name', type: 'text' })
  runName: string;

  @Column({ name: 'parent_run_id', type: 'text', nullable: true })
  parentRunId: string | null;

  @Column({ type: 'text', default: 'RUNNING' })
  status: RunStatus;

  @Column({ type: 'jsonb', default: () => "'{}'::jsonb" })
  params: Record<string, string>;

  @Column({ type: 'jsonb', default: () => "'{}'::jsonb" })
  tags: Record<string, string>;

  @Column({ name: 'start_time', type: 'timestamptz', default: () => 'now()' })
  startTime: Date;

  @Column({ name: 'end_time', type: 'timestamptz', nullable: true })
  endTime: Date | null;
}

/** registry.run_metrics — one value per (run, key, step); re-logging a step overwrites it. */
@Entity({ schema: 'registry', name: 'run_metrics' })
export class RunMetricEntity {
  @PrimaryColumn({ name: 'run_id', type: 'text' })
  runId: string;

  @PrimaryColumn({ type: 'text' })
  key: string;

  @PrimaryColumn({ type: 'integer' })
  step: number;

  @Column({ type: 'double precision' })
  value: number;

  @Column({ type: 'timestamptz', default: () => 'now()' })
  timestamp: Date;
}
