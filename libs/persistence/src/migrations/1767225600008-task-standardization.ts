import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The standardisation statistics a task computed from its sites' sums before
 * round 1 ({ mean, std, examples, sites }), so that a coordinator resuming the
 * task trains on with the same ones. Null for models whose statistics are
 * fixed in the use case.
 */
export class TaskStandardization1767225600008 implements MigrationInterface {
  name = 'TaskStandardization1767225600008';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE coordinator.task_runs ADD COLUMN standardization jsonb`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE coordinator.task_runs DROP COLUMN standardization`);
  }
}
