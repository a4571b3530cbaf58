import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The server-side state of the task's strategy after each round (FedAvgM's
 * momentum, the FedOpt family's moments), beside the round's weights, so that
 * a coordinator taking the task over continues with it. Null for stateless
 * strategies and for checkpoints written before tasks could choose one.
 */
export class CheckpointStrategyState1767225600007 implements MigrationInterface {
  name = 'CheckpointStrategyState1767225600007';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE coordinator.checkpoints ADD COLUMN strategy_state bytea`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE coordinator.checkpoints DROP COLUMN strategy_state`);
  }
}
