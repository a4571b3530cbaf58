import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Sites enrolled with their own broker user (`npm run cli -- nodes enroll`): a node row exists from
 * enrolment on ('enrolled' until the site first registers) and a revoked site keeps its row, with
 * status 'revoked', so that coordinators stop using it and the gateway shows why.
 */
export class SiteEnrolment1767225600005 implements MigrationInterface {
  name = 'SiteEnrolment1767225600005';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE coordinator.nodes ADD COLUMN enrolled_at timestamptz NULL, ADD COLUMN revoked_at timestamptz NULL`);
    await q.query(`UPDATE coordinator.nodes SET status = 'offline' WHERE status NOT IN ('online', 'offline')`);
    await q.query(
      `ALTER TABLE coordinator.nodes ADD CONSTRAINT nodes_status_known CHECK (status IN ('enrolled', 'online', 'offline', 'revoked'))`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE coordinator.nodes DROP CONSTRAINT nodes_status_known`);
    await q.query(`ALTER TABLE coordinator.nodes DROP COLUMN enrolled_at, DROP COLUMN revoked_at`);
  }
}
