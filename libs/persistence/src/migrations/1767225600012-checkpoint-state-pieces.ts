import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A strategy's server-side state in pieces, as large weights already are: the
 * FedOpt family keeps two float64 buffers the size of the model, four times
 * the weights, so a model of 256 MiB has a state of 1 GiB, beyond what one
 * bytea field holds. State above CHECKPOINT_PIECE_BYTES goes into
 * coordinator.checkpoint_chunks after the weights' pieces (indexes `pieces`
 * to `pieces + state_pieces - 1`); `state_pieces` 0: in `strategy_state`, as before.
 */
export class CheckpointStatePieces1767225600012 implements MigrationInterface {
  name = 'CheckpointStatePieces1767225600012';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE coordinator.checkpoints ADD COLUMN state_pieces integer NOT NULL DEFAULT 0`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE coordinator.checkpoints DROP COLUMN state_pieces`);
  }
}
