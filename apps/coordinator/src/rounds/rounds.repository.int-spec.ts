import { createHash, randomBytes } from 'node:crypto';
import { DataSource } from 'typeorm';
import { RoundFigures } from '@fl/contracts';
import { createDataSource, runMigrations } from '@fl/persistence';
import { createTestDatabase } from '../../../../libs/persistence/src/testing';
import { RoundsRepository } from './rounds.repository';

/** Checkpoints on a real PostgreSQL: small ones in one field, large ones in pieces, read back and verified. */
describe('RoundsRepository checkpoints (PostgreSQL)', () => {
  let db: { url: string; drop(): Promise<void> };
  let ds: DataSource;
  let rounds: RoundsRepository;

  const figures: RoundFigures = {
    participants: 1, examples: 10, train_loss: 1, eval_loss: 1, eval_accuracy: 0.5, eval_examples: 5,
    started_at: new Date().toISOString(), finished_at: new Date().toISOString(), duration_ms: 1,
  };
  const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

  async function store(taskId: number, round: number, weights: Buffer): Promise<void> {
    await rounds.start(taskId, round, 1);
    await rounds.complete(taskId, round, figures, weights, sha(weights), null);
  }

  beforeAll(async () => {
    db = await createTestDatabase('fl_checkpoints');
    ds = createDataSource({ url: db.url, poolSize: 2 });
    await ds.initialize();
    await runMigrations(ds);
    rounds = new RoundsRepository(ds);
    rounds.pieceBytes = 1000;
  });

  afterAll(async () => {
    await ds.destroy();
    await db.drop();
  });

  it('keeps a small checkpoint in one field', async () => {
    const weights = randomBytes(1000);
    await store(1, 1, weights);
    const cp = await rounds.latestCheckpoint(1);
    expect(cp?.round).toBe(1);
    expect(cp?.weights.equals(weights)).toBe(true);
    const [row] = await ds.query(`SELECT pieces FROM coordinator.checkpoints WHERE task_id = 1`);
    expect(row.pieces).toBe(0);
  });

  it('stores a large checkpoint in pieces and reads it back whole, a second write of the round replacing the first', async () => {
    await store(2, 1, randomBytes(3500));
    const weights = randomBytes(2500);
    await store(2, 1, weights);
    const [row] = await ds.query(`SELECT pieces, length(weights) AS bytes FROM coordinator.checkpoints WHERE task_id = 2`);
    expect(row).toEqual({ pieces: 3, bytes: 0 });
    const chunks = await ds.query(`SELECT index, length(data) AS bytes FROM coordinator.checkpoint_chunks WHERE task_id = 2 ORDER BY index`);
    expect(chunks).toEqual([{ index: 0, bytes: 1000 }, { index: 1, bytes: 1000 }, { index: 2, bytes: 500 }]);
    const cp = await rounds.latestCheckpoint(2);
    expect(cp?.weights.equals(weights)).toBe(true);
    expect(cp?.sha256).toBe(sha(weights));
  });

  it('refuses pieces that do not match the stored SHA-256', async () => {
    await store(3, 1, randomBytes(2000));
    await ds.query(`UPDATE coordinator.checkpoint_chunks SET data = $1 WHERE task_id = 3 AND index = 1`, [randomBytes(1000)]);
    await expect(rounds.latestCheckpoint(3)).rejects.toThrow(/SHA-256/);
  });
});
