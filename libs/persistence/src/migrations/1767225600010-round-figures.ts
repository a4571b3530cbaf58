import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A completed round's figures as its event carried them (privacy spent, the
 * server-side evaluation and refused updates included), so that a coordinator
 * resuming a task can send the last round's event again: the coordinator that
 * completed it may have died before the broker confirmed it. Rounds stored
 * before this have none (their columns still hold the main figures).
 */
export class RoundFigures1767225600010 implements MigrationInterface {
  name = 'RoundFigures1767225600010';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE coordinator.rounds ADD COLUMN figures jsonb`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE coordinator.rounds DROP COLUMN figures`);
  }
}
