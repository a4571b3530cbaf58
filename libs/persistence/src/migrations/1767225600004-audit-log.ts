import { MigrationInterface, QueryRunner } from 'typeorm';

/** Who did what to which object, and when: written by the gateway, read by admins. */
export class AuditLog1767225600004 implements MigrationInterface {
  name = 'AuditLog1767225600004';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE gateway.audit_events (
        id             bigserial PRIMARY KEY,
        at             timestamptz NOT NULL DEFAULT now(),
        actor          text NOT NULL,
        via            text NOT NULL,
        action         text NOT NULL,
        target_type    text NOT NULL,
        target_id      text NULL,
        details        jsonb NOT NULL DEFAULT '{}'::jsonb,
        correlation_id text NULL
      )`);
    await q.query(`CREATE INDEX audit_events_at ON gateway.audit_events (at DESC)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE gateway.audit_events`);
  }
}
