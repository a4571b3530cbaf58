import { createHash, randomBytes } from 'node:crypto';
import { DataSource } from 'typeorm';
import { RoundFigures } from '@fl/contracts';
import { createDataSource, runMigrations } from '@fl/persistence';
import { createTestDatabase } from '../../../../libs/persistence/src/testing';
import { cut, RoundsRepository } from './rounds.repository';

/** On a real PostgreSQL: a round's start and end each one statement; checkpoints small in one field, large in pieces, read back and verified. */
describe('RoundsRepository: rounds, their records and checkpoints (PostgreSQL)', () => {
  let db: { url: string; drop(): Promise<void> };
  let ds: DataSource;
  let rounds: RoundsRepository;

  const figures: RoundFigures = {
    participants: 1, examples: 10, train_loss: 1, eval_loss: 1, eval_accuracy: 0.5, eval_examples: 5,
    started_at: new Date().toISOString(), finished_at: new Date().toISOString(), duration_ms: 1,
  };
  const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

  async function store(taskId: number, round: number, weights: Buffer): Promise<void> {
    await rounds.start(taskId, round, ['site-a']);
    await rounds.complete(taskId, round, figures, weights, sha(weights));
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

  it('starts a round with its selected workers, and completes it with both phases\' records, figures, checkpoint and progress in one statement', async () => {
    await ds.query(`INSERT INTO coordinator.task_runs (task_id, spec, state, current_round) VALUES (4, '{}', 'running', 0)`);
    await rounds.start(4, 1, ['site-a', 'site-b']);
    const participants = () =>
      ds.query(`SELECT node_name, phase, status, examples, loss, accuracy, reason FROM coordinator.round_participants WHERE task_id = 4 ORDER BY phase, node_name`);
    expect(await participants()).toEqual([
      { node_name: 'site-a', phase: 'fit', status: 'selected', examples: null, loss: null, accuracy: null, reason: null },
      { node_name: 'site-b', phase: 'fit', status: 'selected', examples: null, loss: null, accuracy: null, reason: null },
    ]);
    const weights = randomBytes(800);
    await rounds.complete(4, 1, { ...figures, participants: 1 }, weights, sha(weights), {
      records: {
        fit: [
          { node: 'site-a', status: 'received', examples: 10, loss: 0.5 },
          { node: 'site-b', status: 'missing', reason: 'no answer within 30 s' },
        ],
        evaluate: [{ node: 'site-a', status: 'received', examples: 5, loss: 0.25, accuracy: 0.75 }],
      },
    });
    expect(await participants()).toEqual([
      { node_name: 'site-a', phase: 'evaluate', status: 'received', examples: 5, loss: 0.25, accuracy: 0.75, reason: null },
      { node_name: 'site-a', phase: 'fit', status: 'received', examples: 10, loss: 0.5, accuracy: null, reason: null },
      { node_name: 'site-b', phase: 'fit', status: 'missing', examples: null, loss: null, accuracy: null, reason: 'no answer within 30 s' },
    ]);
    const [round] = await ds.query(`SELECT status, participants FROM coordinator.rounds WHERE task_id = 4 AND round = 1`);
    expect(round).toEqual({ status: 'completed', participants: 1 });
    const [run] = await ds.query(`SELECT current_round FROM coordinator.task_runs WHERE task_id = 4`);
    expect(run.current_round).toBe(1);
    expect((await rounds.latestCheckpoint(4))?.weights.equals(weights)).toBe(true);
  });

  it("starts the next round in the statement that completes this one, and none of it is stored if any part fails", async () => {
    await ds.query(`INSERT INTO coordinator.task_runs (task_id, spec, state, current_round) VALUES (9, '{}', 'running', 0)`);
    const startedAt = new Date('2026-12-07T10:00:00.000Z');
    // Names an array literal must quote, as the site names of a deployment may be.
    const sites = ['site "a"', 'site,b', 'site\\c', 'site{d}'];
    await rounds.start(9, 1, sites, startedAt);
    const weights = randomBytes(100);
    await rounds.complete(9, 1, figures, weights, sha(weights), {
      records: { fit: sites.map((node) => ({ node, status: 'received' as const, examples: 10 })) },
      // The coordinator's clock to the microsecond.
      next: { round: 2, selected: sites.slice(0, 3), startedAt: '2026-12-07T10:00:05.123456Z' },
    });
    const state = () => ds.query(`SELECT round, status, participants, started_at FROM coordinator.rounds WHERE task_id = 9 ORDER BY round`);
    expect(await state()).toEqual([
      { round: 1, status: 'completed', participants: 1, started_at: startedAt },
      { round: 2, status: 'running', participants: 3, started_at: new Date('2026-12-07T10:00:05.123Z') },
    ]);
    const [{ us }] = await ds.query(`SELECT (extract(epoch FROM started_at) * 1000000)::bigint AS us FROM coordinator.rounds WHERE task_id = 9 AND round = 2`);
    expect(BigInt(us)).toBe(BigInt(Date.parse('2026-12-07T10:00:05.123Z')) * 1000n + 456n);
    const selected = await ds.query(`SELECT node_name, status FROM coordinator.round_participants WHERE task_id = 9 AND round = 2 ORDER BY node_name`);
    expect(selected).toEqual(sites.slice(0, 3).sort().map((node_name) => ({ node_name, status: 'selected' })));
    expect((await ds.query(`SELECT count(*)::int AS n FROM coordinator.round_participants WHERE task_id = 9 AND round = 1 AND status = 'received'`))[0].n).toBe(4);

    // Round 2's end with round 3's start, whose participants' records break a constraint: round 2 stays running, round 3 is not there.
    await expect(
      rounds.complete(9, 2, figures, weights, sha(weights), {
        records: { fit: [{ node: 'site-a', status: 'bogus' as never }] },
        next: { round: 3, selected: ['site-a'], startedAt: new Date() },
      }),
    ).rejects.toThrow(/round_participants_status_check/);
    expect((await state()).map((r: { round: number; status: string }) => [r.round, r.status])).toEqual([[1, 'completed'], [2, 'running']]);
    expect((await ds.query(`SELECT current_round FROM coordinator.task_runs WHERE task_id = 9`))[0].current_round).toBe(1);
    expect((await rounds.latestCheckpoint(9))?.round).toBe(1);
  });

  it('fails a round with its records, leaving the last completed round the one to resume from', async () => {
    await rounds.start(4, 2, ['site-a']);
    await rounds.fail(4, 2, { fit: [{ node: 'site-a', status: 'rejected', examples: 10, reason: 'non-finite' }] });
    const [round] = await ds.query(`SELECT status FROM coordinator.rounds WHERE task_id = 4 AND round = 2`);
    expect(round.status).toBe('failed');
    const rows = await ds.query(`SELECT status, reason FROM coordinator.round_participants WHERE task_id = 4 AND round = 2`);
    expect(rows).toEqual([{ status: 'rejected', reason: 'non-finite' }]);
    expect((await rounds.latestCheckpoint(4))?.round).toBe(1);
  });

  it('keeps the last checkpoints asked for, small or in pieces, and all of them when asked for none', async () => {
    const storeKeeping = async (taskId: number, round: number, bytes: number, keep: number) => {
      const weights = randomBytes(bytes);
      await rounds.start(taskId, round, ['site-a']);
      await rounds.complete(taskId, round, figures, weights, sha(weights), { keep });
      return weights;
    };
    const kept = async (taskId: number) => ({
      checkpoints: (await ds.query(`SELECT round FROM coordinator.checkpoints WHERE task_id = $1 ORDER BY round`, [taskId])).map((r: { round: number }) => r.round),
      pieces: (await ds.query(`SELECT DISTINCT round FROM coordinator.checkpoint_chunks WHERE task_id = $1 ORDER BY round`, [taskId])).map((r: { round: number }) => r.round),
    });
    let last = Buffer.alloc(0);
    for (let round = 1; round <= 4; round++) last = await storeKeeping(5, round, round % 2 ? 800 : 2500, 2); // odd rounds small, even ones in pieces
    expect(await kept(5)).toEqual({ checkpoints: [3, 4], pieces: [4] });
    expect((await rounds.latestCheckpoint(5))?.weights.equals(last)).toBe(true);
    for (let round = 1; round <= 3; round++) await storeKeeping(6, round, 2500, 0);
    expect(await kept(6)).toEqual({ checkpoints: [1, 2, 3], pieces: [1, 2, 3] });
    await expect(rounds.complete(6, 4, figures, last, sha(last), { keep: -1 })).rejects.toThrow('checkpoints to keep must be a whole number >= 0, got -1');
  });

  it('keeps completed rounds\' figures whole, as their events carried them, and lists them in order', async () => {
    const whole: RoundFigures = { ...figures, participants: 2, epsilon: 1.25, server_eval_accuracy: 0.9, server_eval_loss: 0.3, server_eval_examples: 30, rejected: [{ node: 'site-b', reason: 'non-finite' }] };
    const second: RoundFigures = { ...figures, participants: 1, train_loss: 0.125 };
    await rounds.start(7, 1, ['site-a', 'site-b']);
    expect(await rounds.completedRounds(7)).toEqual([]); // running
    const weights = randomBytes(100);
    await rounds.complete(7, 1, whole, weights, sha(weights));
    await rounds.start(7, 2, ['site-a']);
    await rounds.complete(7, 2, second, weights, sha(weights));
    await rounds.start(7, 3, ['site-a']); // running: not listed
    expect(await rounds.completedRounds(7)).toEqual([
      { round: 1, figures: whole },
      { round: 2, figures: second },
    ]);
    // A round stored before figures were kept whole: its columns.
    await ds.query(`UPDATE coordinator.rounds SET figures = NULL WHERE task_id = 7 AND round = 1`);
    const [main] = await rounds.completedRounds(7);
    expect(main).toEqual({
      round: 1,
      figures: {
        participants: 2, examples: whole.examples, train_loss: whole.train_loss, eval_loss: whole.eval_loss, eval_accuracy: whole.eval_accuracy,
        eval_examples: whole.eval_examples, started_at: expect.any(String), finished_at: whole.finished_at, duration_ms: whole.duration_ms,
      },
    });
  });

  it('refuses pieces that do not match the stored SHA-256', async () => {
    await store(3, 1, randomBytes(2000));
    await ds.query(`UPDATE coordinator.checkpoint_chunks SET data = $1 WHERE task_id = 3 AND index = 1`, [randomBytes(1000)]);
    await expect(rounds.latestCheckpoint(3)).rejects.toThrow(/SHA-256/);
  });

  it('stores a large strategy state in pieces after the weights\' (given as segments, cut across them), a small one in its field, and reads either back', async () => {
    const weights = randomBytes(2500);
    const state = [randomBytes(300), randomBytes(1700), randomBytes(1200)]; // 3,200 bytes: pieces of 1,000 that span the segments
    await rounds.start(8, 1, ['site-a']);
    await rounds.complete(8, 1, figures, weights, sha(weights), { strategyState: state });
    const [row] = await ds.query(`SELECT pieces, state_pieces, strategy_state FROM coordinator.checkpoints WHERE task_id = 8`);
    expect(row).toEqual({ pieces: 3, state_pieces: 4, strategy_state: null });
    const chunks = await ds.query(`SELECT index, length(data) AS bytes FROM coordinator.checkpoint_chunks WHERE task_id = 8 ORDER BY index`);
    expect(chunks.map((c: { bytes: number }) => c.bytes)).toEqual([1000, 1000, 500, 1000, 1000, 1000, 200]);
    const cp = await rounds.latestCheckpoint(8);
    expect(cp?.weights.equals(weights)).toBe(true);
    expect(cp?.strategy_state?.equals(Buffer.concat(state))).toBe(true);
    expect(cp!.strategy_state!.byteOffset % 8).toBe(0);
    // Only the state: the weights are not read.
    const stateOnly = await rounds.latestCheckpoint(8, { weights: false });
    expect(stateOnly?.weights.length).toBe(0);
    expect(stateOnly?.strategy_state?.equals(Buffer.concat(state))).toBe(true);

    // Round 2: weights in one field, the state in pieces; round 3: both small.
    const small = randomBytes(500);
    await rounds.start(8, 2, ['site-a']);
    await rounds.complete(8, 2, figures, small, sha(small), { strategyState: [randomBytes(8), randomBytes(1500)] });
    expect(await ds.query(`SELECT index FROM coordinator.checkpoint_chunks WHERE task_id = 8 AND round = 2 ORDER BY index`)).toEqual([{ index: 0 }, { index: 1 }]);
    expect((await rounds.latestCheckpoint(8))?.strategy_state?.length).toBe(1508);
    await rounds.start(8, 3, ['site-a']);
    await rounds.complete(8, 3, figures, small, sha(small), { strategyState: [Buffer.from('ab'), Buffer.from('cd')] });
    const [third] = await ds.query(`SELECT state_pieces, strategy_state FROM coordinator.checkpoints WHERE task_id = 8 AND round = 3`);
    expect(third).toEqual({ state_pieces: 0, strategy_state: Buffer.from('abcd') });
    expect((await rounds.latestCheckpoint(8))?.strategy_state).toEqual(Buffer.from('abcd'));
  });

  it('refuses weights kept in one field that do not match the stored SHA-256', async () => {
    const weights = randomBytes(600);
    await store(10, 1, weights);
    await ds.query(`UPDATE coordinator.checkpoints SET weights = $1 WHERE task_id = 10`, [randomBytes(600)]);
    await expect(rounds.latestCheckpoint(10)).rejects.toThrow(`checkpoint of task 10 round 1: its weights have SHA-256`);
    // Only the state asked for: the weights are not read, so not checked.
    expect((await rounds.latestCheckpoint(10, { weights: false }))?.round).toBe(1);
  });

  it('keeps the SHA-256 of a strategy state and refuses a state changed in its field or in its pieces, two swapped pieces included', async () => {
    const weights = randomBytes(100);
    const small = randomBytes(600);
    const large = [randomBytes(1000), randomBytes(1000), randomBytes(500)];
    await rounds.start(11, 1, ['site-a']);
    await rounds.complete(11, 1, figures, weights, sha(weights), { strategyState: [small] });
    await rounds.start(12, 1, ['site-a']);
    await rounds.complete(12, 1, figures, weights, sha(weights), { strategyState: large });
    const stored = async (taskId: number) => (await ds.query(`SELECT state_sha256 FROM coordinator.checkpoints WHERE task_id = $1`, [taskId]))[0].state_sha256;
    expect(await stored(11)).toBe(sha(small));
    expect(await stored(12)).toBe(sha(Buffer.concat(large)));

    await ds.query(`UPDATE coordinator.checkpoints SET strategy_state = $1 WHERE task_id = 11`, [randomBytes(600)]);
    await expect(rounds.latestCheckpoint(11, { weights: false })).rejects.toThrow('checkpoint of task 11 round 1: its strategy state has SHA-256');
    // Pieces of equal length in each other's place: the lengths and the layout still fit, the hash does not.
    for (const [from, to] of [[0, -1], [1, 0], [-1, 1]]) await ds.query(`UPDATE coordinator.checkpoint_chunks SET index = $2 WHERE task_id = 12 AND index = $1`, [from, to]);
    await expect(rounds.latestCheckpoint(12)).rejects.toThrow('checkpoint of task 12 round 1: its 3 strategy state pieces have SHA-256');
  });

  it('reads back unchecked a state stored before states had a SHA-256', async () => {
    const weights = randomBytes(100);
    const state = randomBytes(1500);
    await rounds.start(13, 1, ['site-a']);
    await rounds.complete(13, 1, figures, weights, sha(weights), { strategyState: [state] });
    await ds.query(`UPDATE coordinator.checkpoints SET state_sha256 = NULL WHERE task_id = 13`);
    expect((await rounds.latestCheckpoint(13))?.strategy_state?.equals(state)).toBe(true);
  });

  it('refuses a state whose pieces are missing', async () => {
    const weights = randomBytes(100);
    await rounds.start(9, 1, ['site-a']);
    await rounds.complete(9, 1, figures, weights, sha(weights), { strategyState: [randomBytes(2500)] });
    await ds.query(`DELETE FROM coordinator.checkpoint_chunks WHERE task_id = 9 AND index = 1`);
    await expect(rounds.latestCheckpoint(9)).rejects.toThrow('checkpoint of task 9 round 1: strategy state piece 1 of 3 is missing');
  });
});

describe('cut: segments into pieces', () => {
  const bytes = (n: number, from = 0) => Buffer.from(Array.from({ length: n }, (_, i) => (from + i) % 256));
  it('gives the concatenation in pieces of the size asked for, views within a segment', () => {
    const segments = [bytes(5), bytes(12, 5), bytes(3, 17)];
    const pieces = [...cut(segments, 4)];
    expect(pieces.map((p) => p.length)).toEqual([4, 4, 4, 4, 4]);
    expect(Buffer.concat(pieces)).toEqual(bytes(20));
    expect(pieces[2].buffer).toBe(segments[1].buffer); // within the second segment: a view
    expect([...cut(segments, 100)].map((p) => p.length)).toEqual([20]);
    expect([...cut([], 4)]).toEqual([]);
    expect([...cut([bytes(0), bytes(3)], 2)].map((p) => p.length)).toEqual([2, 1]);
  });
});
