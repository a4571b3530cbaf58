import { MigrationInterface, QueryRunner } from 'typeorm';

/** API keys for automation: only a hash of each key is kept; the key itself is shown once. */
export class ApiKeys1767225600003 implements MigrationInterface {
  name = 'ApiKeys1767225600003';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE gateway.api_keys (
        id          serial PRIMARY KEY,
        name        text NOT NULL,
        subject     text NOT NULL,
        role        text NOT NULL CHECK (role IN ('admin', 'scientist', 'viewer')),
        key_prefix  text NOT NULL,
        key_hash    text NOT NULL UNIQUE,
        created_by  text NOT NULL,
        created_at  timestamptz NOT NULL DEFAULT now(),
        revoked_at  timestamptz NULL
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE gateway.api_keys`);
  }
}
