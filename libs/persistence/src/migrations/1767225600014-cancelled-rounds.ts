import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A round may end `cancelled`: the task was cancelled while the round ran
 * (and, with chained evaluation, the next round whose fit had gone out).
 * Before, such rows stayed `running` for good once the task had finished.
 * Rows left so by an earlier release are marked now.
 */
export class CancelledRounds1767225600014 implements MigrationInterface {
  name = 'CancelledRounds1767225600014';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE coordinator.rounds DROP CONSTRAINT rounds_status_check`);
    await q.query(`ALTER TABLE coordinator.rounds ADD CONSTRAINT rounds_status_check CHECK (status IN ('running','completed','failed','cancelled'))`);
    await q.query(
      `UPDATE coordinator.rounds r SET status = 'cancelled', finished_at = coalesce(r.finished_at, t.updated_at)
       FROM coordinator.task_runs t
       WHERE t.task_id = r.task_id AND t.state = 'finished' AND t.outcome = 'cancelled' AND r.status = 'running'`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`UPDATE coordinator.rounds SET status = 'failed' WHERE status = 'cancelled'`);
    await q.query(`ALTER TABLE coordinator.rounds DROP CONSTRAINT rounds_status_check`);
    await q.query(`ALTER TABLE coordinator.rounds ADD CONSTRAINT rounds_status_check CHECK (status IN ('running','completed','failed'))`);
  }
}
