import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Experiment tracking of a task: the coordinator remembers the parent run and
 * the per-worker child runs it opened, so that a task resumed by another
 * coordinator keeps logging into the same runs instead of starting new ones.
 */
export class TaskTracking1767225600001 implements MigrationInterface {
  name = 'TaskTracking1767225600001';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE coordinator.task_runs ADD COLUMN tracking_run_id text NULL`);
    await q.query(`ALTER TABLE coordinator.task_runs ADD COLUMN tracking_child_runs jsonb NOT NULL DEFAULT '{}'::jsonb`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE coordinator.task_runs DROP COLUMN tracking_child_runs`);
    await q.query(`ALTER TABLE coordinator.task_runs DROP COLUMN tracking_run_id`);
  }
}
