import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { TaskSpec } from '@fl/contracts';
import { DATA_SOURCE, rowsOf } from '@fl/runtime';
import { CoordinatorConfig } from '../config';
import { COORDINATOR_CONFIG } from '../tokens';

export interface TaskRun {
  task_id: number;
  spec: TaskSpec;
  cancel_requested: boolean;
  current_round: number;
  /**
   * When the claim took over a running task whose lease had lapsed: how many seconds ago it lapsed
   * (the database's clock); null otherwise (never claimed, handed back, or still held by this one).
   */
  lapsed_s: number | null;
}

/**
 * Task ownership through lease rows in PostgreSQL. A claim is one UPDATE that
 * only matches a task nobody holds (or whose holder let the lease lapse), so
 * with several coordinators exactly one runs each task, and a task whose
 * coordinator died is taken over once its lease expires.
 */
@Injectable()
export class TaskLeases {
  constructor(
    @Inject(DATA_SOURCE) private readonly db: DataSource,
    @Inject(COORDINATOR_CONFIG) private readonly config: CoordinatorConfig,
  ) {}

  private get me(): string {
    return this.config.COORDINATOR_ID;
  }

  /** Records a submitted task; a duplicate submission changes nothing, nor does one of a deleted task (refused by a trigger). */
  async enqueue(spec: TaskSpec): Promise<void> {
    await this.db.query(
      `INSERT INTO coordinator.task_runs (task_id, spec, state) VALUES ($1, $2::jsonb, 'queued') ON CONFLICT (task_id) DO NOTHING`,
      [spec.task_id, JSON.stringify(spec)],
    );
  }

  async claim(taskId: number): Promise<TaskRun | null> {
    // The row as it was (locked, so a concurrent claim waits and then sees this one's lease).
    const rows = rowsOf<TaskRun>(await this.db.query(
      `WITH before AS (
         SELECT task_id, state, lease_expires_at FROM coordinator.task_runs WHERE task_id = $1 FOR UPDATE
       )
       UPDATE coordinator.task_runs t
       SET owner = $2, state = 'running', lease_expires_at = now() + make_interval(secs => $3), updated_at = now()
       FROM before
       WHERE t.task_id = before.task_id AND t.state <> 'finished' AND (t.owner IS NULL OR t.owner = $2 OR t.lease_expires_at < now())
         AND NOT EXISTS (SELECT 1 FROM coordinator.deleted_tasks d WHERE d.task_id = t.task_id)
       RETURNING t.task_id, t.spec, t.cancel_requested, t.current_round,
         CASE WHEN before.state = 'running' AND before.lease_expires_at < now()
           THEN extract(epoch FROM now() - before.lease_expires_at)::float8 END AS lapsed_s`,
      [taskId, this.me, this.config.LEASE_TTL_S],
    ));
    return rows[0] ?? null;
  }

  /** Tasks nobody runs: never claimed, or whose lease lapsed; never a deleted one (it waits for its purge). */
  async claimable(limit = 10): Promise<number[]> {
    const rows: { task_id: number }[] = await this.db.query(
      `SELECT task_id FROM coordinator.task_runs t
       WHERE state <> 'finished' AND (owner IS NULL OR lease_expires_at < now() OR (owner = $1 AND state = 'queued'))
         AND NOT EXISTS (SELECT 1 FROM coordinator.deleted_tasks d WHERE d.task_id = t.task_id)
       ORDER BY task_id LIMIT $2`,
      [this.me, limit],
    );
    return rows.map((r) => r.task_id);
  }

  /** Extends the lease; false when this coordinator no longer holds it. */
  async renew(taskId: number): Promise<boolean> {
    const rows = rowsOf(await this.db.query(
      `UPDATE coordinator.task_runs SET lease_expires_at = now() + make_interval(secs => $3), updated_at = now()
       WHERE task_id = $1 AND owner = $2 AND state = 'running' RETURNING task_id`,
      [taskId, this.me, this.config.LEASE_TTL_S],
    ));
    return rows.length > 0;
  }

  /**
   * Ends the task, leaving no round 'running': the one a failed task failed in is marked failed with it,
   * those a cancelled task was running (with chained evaluation, up to two) cancelled.
   */
  async finish(taskId: number, outcome: 'success' | 'failed' | 'cancelled'): Promise<void> {
    await this.db.transaction(async (m) => {
      await m.query(
        `UPDATE coordinator.task_runs SET state = 'finished', outcome = $2, lease_expires_at = NULL, updated_at = now() WHERE task_id = $1`,
        [taskId, outcome],
      );
      if (outcome !== 'success') {
        await m.query(`UPDATE coordinator.rounds SET status = $2, finished_at = now() WHERE task_id = $1 AND status = 'running'`, [taskId, outcome]);
      }
    });
  }

  /** Marks a cancel request; returns the task's state, or null if this coordinator never saw the task. */
  async requestCancel(taskId: number): Promise<{ state: string; owner: string | null } | null> {
    const rows = rowsOf<{ state: string; owner: string | null }>(await this.db.query(
      `UPDATE coordinator.task_runs SET cancel_requested = true, updated_at = now() WHERE task_id = $1 RETURNING state, owner`,
      [taskId],
    ));
    return rows[0] ?? null;
  }

  /** Finishes a queued (never started) task as cancelled; true if this call did it. */
  async cancelIfQueued(taskId: number): Promise<boolean> {
    const rows = rowsOf(await this.db.query(
      `UPDATE coordinator.task_runs SET state = 'finished', outcome = 'cancelled', updated_at = now()
       WHERE task_id = $1 AND state = 'queued' RETURNING task_id`,
      [taskId],
    ));
    return rows.length > 0;
  }

  async isCancelRequested(taskId: number): Promise<boolean> {
    const rows: { cancel_requested: boolean }[] = await this.db.query(`SELECT cancel_requested FROM coordinator.task_runs WHERE task_id = $1`, [taskId]);
    return rows[0]?.cancel_requested ?? false;
  }

  /** Hands a running task back (on shutdown) so that the next sweep anywhere can resume it at once. */
  async release(taskId: number): Promise<void> {
    await this.db.query(
      `UPDATE coordinator.task_runs SET owner = NULL, state = 'queued', lease_expires_at = NULL, updated_at = now() WHERE task_id = $1 AND owner = $2 AND state = 'running'`,
      [taskId, this.me],
    );
  }
}
