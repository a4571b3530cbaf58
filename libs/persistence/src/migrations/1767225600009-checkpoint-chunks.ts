import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Checkpoints of large weights in pieces: one bytea field holds at most 1 GB
 * and node-postgres sends a bytea parameter as a hex string twice its size,
 * so weights above CHECKPOINT_PIECE_BYTES go into rows of at most that size,
 * written in the checkpoint's transaction; `pieces` says how many (0: the
 * weights are in the `weights` column, as before).
 */
export class CheckpointChunks1767225600009 implements MigrationInterface {
  name = 'CheckpointChunks1767225600009';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE coordinator.checkpoints ADD COLUMN pieces integer NOT NULL DEFAULT 0`);
    await q.query(`
      CREATE TABLE coordinator.checkpoint_chunks (
        task_id integer NOT NULL,
        round   integer NOT NULL,
        index   integer NOT NULL,
        data    bytea NOT NULL,
        PRIMARY KEY (task_id, round, index),
        FOREIGN KEY (task_id, round) REFERENCES coordinator.checkpoints (task_id, round) ON DELETE CASCADE
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE coordinator.checkpoint_chunks`);
    await q.query(`ALTER TABLE coordinator.checkpoints DROP COLUMN pieces`);
  }
}
