import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Use cases added through the gateway (`POST /use-cases`), beside the ones
 * shipped as files: the definition as validated, in the file format.
 */
export class UseCases1767225600006 implements MigrationInterface {
  name = 'UseCases1767225600006';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE gateway.use_cases (
        name        text PRIMARY KEY,
        definition  jsonb NOT NULL,
        created_by  text NOT NULL,
        created_at  timestamptz NOT NULL DEFAULT now()
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE gateway.use_cases`);
  }
}
