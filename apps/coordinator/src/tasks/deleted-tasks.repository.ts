import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { DATA_SOURCE } from '@fl/runtime';

/** The coordinator's rows of one task, by table, as a purge deleted them. */
export interface PurgedRows {
  task_runs: number;
  rounds: number;
  round_participants: number;
  checkpoints: number;
  checkpoint_chunks: number;
}

/**
 * What a purge did: `purged` (the rows counted), `running` (a coordinator
 * holds the task's lease: it has not stopped yet), or `taken` (another
 * coordinator is purging it right now).
 */
export type PurgeOutcome = { outcome: 'purged'; rows: PurgedRows } | { outcome: 'running' | 'taken' };

/** In deletion order: pieces before their checkpoint, the lease row last. */
const TABLES: (keyof PurgedRows)[] = ['checkpoint_chunks', 'checkpoints', 'round_participants', 'rounds', 'task_runs'];

/** Whether someone holds the task's lease: it runs, or its runner has not handed it back yet. */
const LEASE_HELD = `state <> 'finished' AND owner IS NOT NULL AND lease_expires_at >= now()`;

/**
 * Tasks deleted at the gateway (coordinator.deleted_tasks) and the purge of
 * this schema's rows of them. A deleted task is never written again: a
 * trigger refuses its rows (see the migration TaskDeletions), and it is never
 * claimed (TaskLeases).
 */
@Injectable()
export class DeletedTasksRepository {
  constructor(@Inject(DATA_SOURCE) private readonly db: DataSource) {}

  /**
   * Records deleted tasks (one already recorded changes nothing) and flags
   * those still running as cancel requested, so that a runner that missed the
   * cancel stops between rounds. One transaction; rows are taken in id order,
   * so that two coordinators recording overlapping ids never deadlock, and
   * FOR NO KEY UPDATE, which a write in flight (FOR KEY SHARE) does not hold up.
   */
  async record(taskIds: number[]): Promise<void> {
    await this.db.transaction(async (m) => {
      await m.query(
        `INSERT INTO coordinator.deleted_tasks (task_id) SELECT DISTINCT id FROM unnest($1::int[]) AS id ORDER BY id ON CONFLICT (task_id) DO NOTHING`,
        [taskIds],
      );
      await m.query(
        `UPDATE coordinator.task_runs SET cancel_requested = true, updated_at = now()
         WHERE task_id IN (SELECT task_id FROM coordinator.task_runs
                           WHERE task_id = ANY($1::int[]) AND state <> 'finished' AND NOT cancel_requested ORDER BY task_id FOR NO KEY UPDATE)`,
        [taskIds],
      );
    });
  }

  /**
   * Deleted tasks with rows left here, after `afterId`, in id order: those
   * never purged, and those given a lease row after their purge (a submission
   * that raced the deletion: the trigger cannot see a deletion not yet committed).
   */
  async unpurged(afterId: number, limit: number): Promise<number[]> {
    const rows: { task_id: number }[] = await this.db.query(
      `SELECT task_id FROM coordinator.deleted_tasks WHERE purged_at IS NULL AND task_id > $1
       UNION
       SELECT r.task_id FROM coordinator.task_runs r JOIN coordinator.deleted_tasks d USING (task_id) WHERE r.task_id > $1
       ORDER BY task_id LIMIT $2`,
      [afterId, limit],
    );
    return rows.map((r) => r.task_id);
  }

  /**
   * Deletes every row of a deleted task here, in one transaction, unless a
   * coordinator holds its lease. The lease row is locked first (FOR UPDATE):
   * a write in flight holds it FOR KEY SHARE (the trigger), so the purge
   * waits for that write and deletes its rows too.
   */
  async purge(taskId: number): Promise<PurgeOutcome> {
    // Looked at without a lock first: a running task's writes never wait on a purge that would not happen.
    if (await this.leaseHeld(taskId)) return { outcome: 'running' };
    return this.db.transaction(async (m): Promise<PurgeOutcome> => {
      const mine: unknown[] = await m.query(`SELECT task_id FROM coordinator.deleted_tasks WHERE task_id = $1 FOR UPDATE SKIP LOCKED`, [taskId]);
      if (mine.length === 0) return { outcome: 'taken' };
      const held: { held: boolean }[] = await m.query(`SELECT ${LEASE_HELD} AS held FROM coordinator.task_runs WHERE task_id = $1 FOR UPDATE`, [taskId]);
      if (held[0]?.held) return { outcome: 'running' };
      const rows = {} as PurgedRows;
      for (const table of TABLES) {
        const [gone]: { n: number }[] = await m.query(`WITH gone AS (DELETE FROM coordinator.${table} WHERE task_id = $1 RETURNING 1) SELECT count(*)::int AS n FROM gone`, [taskId]);
        rows[table] = gone.n;
      }
      await m.query(`UPDATE coordinator.deleted_tasks SET purged_at = now() WHERE task_id = $1`, [taskId]);
      return { outcome: 'purged', rows };
    });
  }

  private async leaseHeld(taskId: number): Promise<boolean> {
    const rows: { held: boolean }[] = await this.db.query(`SELECT ${LEASE_HELD} AS held FROM coordinator.task_runs WHERE task_id = $1`, [taskId]);
    return rows[0]?.held ?? false;
  }
}
