import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The SHA-256 of a checkpoint's strategy state, as the weights have theirs:
 * a state put back together from its pieces (or read from its field) is
 * checked against it, so that a piece out of place or changed is refused
 * rather than resumed from. Null: no state, or a checkpoint stored before
 * this column (read back unchecked, as before).
 */
export class CheckpointStateHash1767225600013 implements MigrationInterface {
  name = 'CheckpointStateHash1767225600013';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE coordinator.checkpoints ADD COLUMN state_sha256 text`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE coordinator.checkpoints DROP COLUMN state_sha256`);
  }
}
