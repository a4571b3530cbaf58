import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { CompletedRound, DEFAULT_FL_SETTINGS, FlSettings, RoundFigures } from '@fl/contracts';
import { DATA_SOURCE, rowsOf } from '@fl/runtime';
import { allowedSources, TaskStatus } from './task-status';
import { RoundDto, TaskDto } from './dto/task.dto';

interface TaskRow {
  id: number;
  user_id: string;
  use_case: string;
  model_name: string;
  model_version: number;
  num_global_iterations: number;
  run_name: string;
  experiment_name: string;
  settings: Partial<FlSettings>;
  status: TaskStatus;
  reason: string | null;
  current_round: number;
  metrics: TaskDto['metrics'];
  result_model_name: string | null;
  result_model_version: number | null;
  cancel_requested_at: Date | null;
  correlation_id: string | null;
  created_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
  updated_at: Date;
}

export type NewTask = Omit<TaskDto, 'id' | 'status' | 'reason' | 'current_round' | 'metrics' | 'result_model_name' | 'result_model_version' | 'created_at' | 'started_at' | 'finished_at' | 'cancel_requested_at' | 'updated_at' | 'correlation_id'>;

/** A task's federated-learning settings, as stored and as sent to the coordinators. */
export function settingsOf(task: NewTask): FlSettings {
  return {
    strategy: task.strategy,
    strategy_params: task.strategy_params,
    min_fit_clients: task.min_fit_clients,
    fraction_fit: task.fraction_fit,
    local_epochs: task.local_epochs,
    batch_size: task.batch_size,
    learning_rate: task.learning_rate,
    round_timeout_s: task.round_timeout_s,
    seed: task.seed,
    ...(task.max_update_norm != null ? { max_update_norm: task.max_update_norm } : {}),
    ...(task.privacy ? { privacy: task.privacy } : {}),
  };
}

const iso = (d: Date | null) => (d ? d.toISOString() : null);

function toDto(r: TaskRow): TaskDto {
  const s = { ...DEFAULT_FL_SETTINGS, ...r.settings };
  return {
    id: r.id,
    user_id: r.user_id,
    use_case: r.use_case,
    model_name: r.model_name,
    model_version: r.model_version,
    num_global_iterations: r.num_global_iterations,
    run_name: r.run_name,
    experiment_name: r.experiment_name,
    strategy: s.strategy,
    // Tasks stored before strategies could be chosen ran FedAvg, whose parameters are the sampling ones.
    strategy_params: s.strategy_params ?? { min_fit_clients: s.min_fit_clients, fraction_fit: s.fraction_fit },
    min_fit_clients: s.min_fit_clients,
    fraction_fit: s.fraction_fit,
    local_epochs: s.local_epochs,
    batch_size: s.batch_size,
    learning_rate: s.learning_rate,
    round_timeout_s: s.round_timeout_s,
    seed: s.seed,
    max_update_norm: s.max_update_norm ?? null,
    privacy: s.privacy ?? null,
    status: r.status,
    reason: r.reason,
    current_round: r.current_round,
    metrics: r.metrics,
    result_model_name: r.result_model_name,
    result_model_version: r.result_model_version,
    created_at: r.created_at.toISOString(),
    started_at: iso(r.started_at),
    finished_at: iso(r.finished_at),
    cancel_requested_at: iso(r.cancel_requested_at),
    updated_at: r.updated_at.toISOString(),
    correlation_id: r.correlation_id,
  };
}

export interface TransitionFields {
  reason?: string;
  metrics?: TaskDto['metrics'];
  result_model_name?: string;
  result_model_version?: number;
}

/**
 * The gateway's task table. Status changes are guarded in SQL (the WHERE
 * names the statuses a move is allowed from), so a late or duplicate event
 * can never move a task out of a final state, even with two gateways.
 */
@Injectable()
export class TasksRepository {
  constructor(@Inject(DATA_SOURCE) private readonly db: DataSource) {}

  async insert(task: NewTask, correlationId: string): Promise<TaskDto> {
    const settings = settingsOf(task);
    const rows: TaskRow[] = await this.db.query(
      `INSERT INTO gateway.tasks (user_id, use_case, model_name, model_version, num_global_iterations, run_name, experiment_name, settings, correlation_id)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING *`,
      [task.user_id, task.use_case, task.model_name, task.model_version, task.num_global_iterations, task.run_name, task.experiment_name, JSON.stringify(settings), correlationId],
    );
    return toDto(rows[0]);
  }

  async find(id: number): Promise<TaskDto | null> {
    const rows: TaskRow[] = await this.db.query(`SELECT * FROM gateway.tasks WHERE id = $1`, [id]);
    return rows.length ? toDto(rows[0]) : null;
  }

  async list(userId?: string): Promise<TaskDto[]> {
    const rows: TaskRow[] = userId === undefined
      ? await this.db.query(`SELECT * FROM gateway.tasks ORDER BY id`)
      : await this.db.query(`SELECT * FROM gateway.tasks WHERE user_id = $1 ORDER BY id`, [userId]);
    return rows.map(toDto);
  }

  /**
   * Deletes tasks (their events with them) and notes each id in the outbox for
   * the coordinators, in one statement; returns the ids it deleted.
   */
  async remove(ids: number[]): Promise<number[]> {
    const rows: { task_id: number }[] = await this.db.query(
      `WITH gone AS (DELETE FROM gateway.tasks WHERE id = ANY($1::int[]) RETURNING id)
       INSERT INTO gateway.task_deletion_outbox (task_id) SELECT id FROM gone ON CONFLICT (task_id) DO NOTHING RETURNING task_id`,
      [ids],
    );
    return rows.map((r) => r.task_id).sort((a, b) => a - b);
  }

  /** Deleted tasks the coordinators have not been told of (no broker confirmation yet), lowest ids first. */
  async untoldDeletions(limit: number): Promise<number[]> {
    const rows: { task_id: number }[] = await this.db.query(`SELECT task_id FROM gateway.task_deletion_outbox ORDER BY task_id LIMIT $1`, [limit]);
    return rows.map((r) => r.task_id);
  }

  async deletionsTold(ids: number[]): Promise<void> {
    await this.db.query(`DELETE FROM gateway.task_deletion_outbox WHERE task_id = ANY($1::int[])`, [ids]);
  }

  /** Moves a task to `to` if its current status allows it; returns the task after the move, or null if not moved. */
  async transition(id: number, to: TaskStatus, fields: TransitionFields = {}): Promise<TaskDto | null> {
    const rows = rowsOf<TaskRow>(await this.db.query(
      `UPDATE gateway.tasks SET
         status = $2::gateway.task_status,
         reason = COALESCE($3, reason),
         metrics = COALESCE($4::jsonb, metrics),
         result_model_name = COALESCE($5, result_model_name),
         result_model_version = COALESCE($6, result_model_version),
         started_at = CASE WHEN $2 = 'running' THEN now() ELSE started_at END,
         finished_at = CASE WHEN $2 IN ('success', 'failed', 'cancelled') THEN now() ELSE finished_at END,
         updated_at = now()
       WHERE id = $1 AND status = ANY($7::gateway.task_status[])
       RETURNING *`,
      [id, to, fields.reason ?? null, fields.metrics ? JSON.stringify(fields.metrics) : null, fields.result_model_name ?? null, fields.result_model_version ?? null, allowedSources(to)],
    ));
    return rows.length ? toDto(rows[0]) : null;
  }

  /** Pending tasks not touched for `afterS` seconds, touched now (so each is picked once per period, by one gateway). */
  async touchStalePending(afterS: number): Promise<TaskDto[]> {
    const rows = rowsOf<TaskRow>(await this.db.query(
      `UPDATE gateway.tasks SET updated_at = now()
       WHERE id IN (SELECT id FROM gateway.tasks WHERE status = 'pending' AND updated_at < now() - make_interval(secs => $1) ORDER BY id LIMIT 100 FOR UPDATE SKIP LOCKED)
       RETURNING *`,
      [afterS],
    ));
    return rows.map(toDto);
  }

  async markCancelRequested(id: number): Promise<void> {
    await this.db.query(`UPDATE gateway.tasks SET cancel_requested_at = COALESCE(cancel_requested_at, now()), updated_at = now() WHERE id = $1`, [id]);
  }

  /** Stores a round's figures once (a duplicate event is ignored) and advances current_round. */
  async recordRound(id: number, round: number, figures: RoundFigures): Promise<boolean> {
    return (await this.recordRounds(id, [{ round, figures }])) === 1;
  }

  /**
   * Stores rounds' figures, each once (rounds already stored are left as they
   * are), and advances current_round to the last; returns how many were new.
   * One statement (one commit) for them all.
   */
  async recordRounds(id: number, rounds: CompletedRound[]): Promise<number> {
    if (rounds.length === 0) return 0;
    const last = Math.max(...rounds.map((r) => r.round));
    const inserted: unknown[] = await this.db.query(
      `WITH progress AS (
         UPDATE gateway.tasks SET current_round = GREATEST(current_round, $2), updated_at = now() WHERE id = $1 RETURNING id
       )
       INSERT INTO gateway.task_events (task_id, type, round, payload)
       SELECT progress.id, 'round.completed', r.round, r.figures
       FROM progress, jsonb_to_recordset($3::jsonb) AS r(round int, figures jsonb)
       ORDER BY r.round
       ON CONFLICT DO NOTHING RETURNING round`,
      [id, last, JSON.stringify(rounds.map((r) => ({ round: r.round, figures: r.figures })))],
    );
    return inserted.length;
  }

  async recordEvent(id: number, type: string, payload: object): Promise<void> {
    await this.db.query(
      `INSERT INTO gateway.task_events (task_id, type, payload)
       SELECT $1, $2, $3::jsonb WHERE EXISTS (SELECT 1 FROM gateway.tasks WHERE id = $1)
       ON CONFLICT DO NOTHING`,
      [id, type, JSON.stringify(payload)],
    );
  }

  async rounds(id: number): Promise<RoundDto[]> {
    const rows: { round: number; payload: RoundFigures }[] = await this.db.query(
      `SELECT round, payload FROM gateway.task_events WHERE task_id = $1 AND type = 'round.completed' ORDER BY round`,
      [id],
    );
    return rows.map((r) => ({ round: r.round, ...r.payload }));
  }
}
