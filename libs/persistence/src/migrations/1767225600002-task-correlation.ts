import { MigrationInterface, QueryRunner } from 'typeorm';

/** The correlation id of the request that created a task, which follows the task into every app's logs. */
export class TaskCorrelation1767225600002 implements MigrationInterface {
  name = 'TaskCorrelation1767225600002';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE gateway.tasks ADD COLUMN correlation_id text NULL`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE gateway.tasks DROP COLUMN correlation_id`);
  }
}
