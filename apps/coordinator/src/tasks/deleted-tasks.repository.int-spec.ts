import { createHash, randomBytes } from 'node:crypto';
import { DataSource } from 'typeorm';
import { DEFAULT_FL_SETTINGS, RoundFigures, TaskSpec } from '@fl/contracts';
import { createMigratedTestDatabase, MigratedTestDatabase } from '../../../../libs/persistence/src/testing';
import { CoordinatorConfig } from '../config';
import { RoundsRepository } from '../rounds/rounds.repository';
import { DeletedTasksRepository, PurgedRows } from './deleted-tasks.repository';
import { TaskLeases } from './task-lease.service';

const TABLES = ['task_runs', 'rounds', 'round_participants', 'checkpoints', 'checkpoint_chunks'] as const;

/** Two coordinators purging deleted tasks from one real PostgreSQL database, with the apps' own writers. */
describe('DeletedTasksRepository: the purge of deleted tasks (PostgreSQL)', () => {
  let db: MigratedTestDatabase;
  let sql: DataSource;

  interface Coordinator {
    /** Its pool, for a write of its that a test holds open. */
    ds: DataSource;
    leases: TaskLeases;
    rounds: RoundsRepository;
    deletions: DeletedTasksRepository;
  }
  let a: Coordinator;
  let b: Coordinator;

  const spec = (taskId: number): TaskSpec => ({
    task_id: taskId, user_id: '1', use_case: 'iris', model_name: 'iris', model_version: 1, num_global_iterations: 3,
    run_name: 'r', experiment_name: 'e', settings: { ...DEFAULT_FL_SETTINGS },
  });
  const figures: RoundFigures = {
    participants: 2, examples: 10, train_loss: 1, eval_loss: 1, eval_accuracy: 0.5, eval_examples: 5,
    started_at: new Date().toISOString(), finished_at: new Date().toISOString(), duration_ms: 1,
  };

  async function coordinator(id: string): Promise<Coordinator> {
    const ds = await db.connect();
    const config = Object.assign(new CoordinatorConfig(), { COORDINATOR_ID: id, LEASE_TTL_S: 30 });
    const rounds = new RoundsRepository(ds);
    rounds.pieceBytes = 1000; // 2,500-byte weights: three pieces
    return { ds, leases: new TaskLeases(ds, config), rounds, deletions: new DeletedTasksRepository(ds) };
  }

  /** What `by` stores running a task: its lease, and per round the records, the figures and a checkpoint in pieces. */
  async function run(by: Coordinator, taskId: number, rounds: number): Promise<void> {
    await by.leases.enqueue(spec(taskId));
    expect(await by.leases.claim(taskId)).not.toBeNull();
    for (let round = 1; round <= rounds; round++) await storeRound(by, taskId, round);
  }

  async function storeRound(by: Coordinator, taskId: number, round: number): Promise<void> {
    await by.rounds.start(taskId, round, ['site-1', 'site-2']);
    const weights = randomBytes(2500);
    await by.rounds.complete(taskId, round, figures, weights, createHash('sha256').update(weights).digest('hex'), {
      records: { fit: [{ node: 'site-1', status: 'received', examples: 5 }, { node: 'site-2', status: 'received', examples: 5 }] },
    });
  }

  /** Rows of the task in each coordinator table. */
  async function rowsOf(taskId: number): Promise<PurgedRows> {
    const counts = {} as PurgedRows;
    for (const table of TABLES) counts[table] = Number((await sql.query(`SELECT count(*) AS n FROM coordinator.${table} WHERE task_id = $1`, [taskId]))[0].n);
    return counts;
  }
  const none: PurgedRows = { task_runs: 0, rounds: 0, round_participants: 0, checkpoints: 0, checkpoint_chunks: 0 };
  /** What `run(..., rounds)` stores: one lease row, and per round a row, two participants, a checkpoint and three pieces. */
  const stored = (rounds: number): PurgedRows => ({ task_runs: 1, rounds, round_participants: 2 * rounds, checkpoints: rounds, checkpoint_chunks: 3 * rounds });

  beforeAll(async () => {
    db = await createMigratedTestDatabase('fl_purge');
    sql = db.sql;
    a = await coordinator('coord-a');
    b = await coordinator('coord-b');
  });

  afterAll(() => db.drop());

  it("purges every row of a finished task in one transaction, and no other task's", async () => {
    await run(a, 1, 2);
    await a.leases.finish(1, 'success');
    await run(a, 2, 2);
    await a.leases.finish(2, 'success');
    expect(await rowsOf(1)).toEqual(stored(2));

    await a.deletions.record([1]);
    expect(await a.deletions.unpurged(0, 100)).toEqual([1]);
    expect(await b.deletions.purge(1)).toEqual({ outcome: 'purged', rows: stored(2) });
    expect(await rowsOf(1)).toEqual(none);
    expect(await rowsOf(2)).toEqual(stored(2));
    const [mark] = await sql.query(`SELECT purged_at FROM coordinator.deleted_tasks WHERE task_id = 1`);
    expect(mark.purged_at).toBeInstanceOf(Date);
    expect(await a.deletions.unpurged(0, 100)).toEqual([]);

    // The same message again, or at the other coordinator: nothing changes, nothing fails.
    await Promise.all([a.deletions.record([1]), b.deletions.record([1])]);
    expect(await a.deletions.purge(1)).toEqual({ outcome: 'purged', rows: none });
    expect(await rowsOf(2)).toEqual(stored(2));
  });

  it('leaves a task its runner still holds, flagged cancelled, and purges it once the runner has finished', async () => {
    await run(a, 10, 1);
    await b.deletions.record([10]);
    expect(await a.leases.isCancelRequested(10)).toBe(true);
    expect(await b.deletions.purge(10)).toEqual({ outcome: 'running' });
    expect(await rowsOf(10)).toEqual(stored(1));
    // The runner ends its round (what it stores now is refused) and stops, as a cancelled one does.
    await storeRound(a, 10, 2);
    expect(await rowsOf(10)).toEqual(stored(1));
    await a.leases.finish(10, 'cancelled');
    expect(await b.deletions.purge(10)).toEqual({ outcome: 'purged', rows: stored(1) });
    expect(await rowsOf(10)).toEqual(none);
  });

  it("purges a task whose lease nobody holds: lapsed, handed back, never claimed, or never seen here", async () => {
    await run(a, 11, 1);
    await sql.query(`UPDATE coordinator.task_runs SET lease_expires_at = now() - interval '1 second' WHERE task_id = 11`);
    await run(a, 12, 1);
    await a.leases.release(12);
    await a.leases.enqueue(spec(13));
    await a.deletions.record([11, 12, 13, 14]);
    expect(await a.deletions.purge(11)).toEqual({ outcome: 'purged', rows: stored(1) });
    expect(await a.deletions.purge(12)).toEqual({ outcome: 'purged', rows: stored(1) });
    expect(await a.deletions.purge(13)).toEqual({ outcome: 'purged', rows: { ...none, task_runs: 1 } });
    expect(await a.deletions.purge(14)).toEqual({ outcome: 'purged', rows: none });
    expect(await a.deletions.unpurged(10, 100)).toEqual([]);
  });

  it('never stores, hands out or resumes a deleted task again, whoever writes', async () => {
    // Deleted before any coordinator saw it: a late submission is refused.
    await a.deletions.record([20]);
    await a.leases.enqueue(spec(20));
    expect(await a.leases.claim(20)).toBeNull();
    await storeRound(a, 20, 1);
    expect(await rowsOf(20)).toEqual(none);
    expect(await a.deletions.purge(20)).toEqual({ outcome: 'purged', rows: none });

    // Deleted while running; its coordinator died: no one takes it over, and once purged it stays so.
    await run(a, 21, 1);
    await a.deletions.record([21]);
    await sql.query(`UPDATE coordinator.task_runs SET lease_expires_at = now() - interval '1 second' WHERE task_id = 21`);
    expect(await b.leases.claimable(100)).not.toContain(21);
    expect(await b.leases.claim(21)).toBeNull();
    expect(await b.deletions.purge(21)).toEqual({ outcome: 'purged', rows: stored(1) });
    await storeRound(a, 21, 2);
    await b.leases.enqueue(spec(21));
    expect(await rowsOf(21)).toEqual(none);
    expect(await b.leases.claim(21)).toBeNull();
  });

  it('purges each task once when two coordinators receive the same deletions and sweep at once', async () => {
    const ids = Array.from({ length: 12 }, (_, i) => 100 + i);
    for (const id of ids) {
      await run(id % 2 ? a : b, id, 1);
      await (id % 2 ? a : b).leases.finish(id, 'success');
    }
    await Promise.all([a.deletions.record(ids), b.deletions.record([...ids].reverse())]);
    const results = await Promise.all(ids.flatMap((id) => [a.deletions.purge(id), b.deletions.purge(id)]));
    const total = { ...none };
    for (const r of results) {
      expect(r.outcome).not.toBe('running');
      if (r.outcome === 'purged') for (const t of TABLES) total[t] += r.rows[t];
    }
    // Every row deleted exactly once between them.
    expect(total).toEqual({ task_runs: 12, rounds: 12, round_participants: 24, checkpoints: 12, checkpoint_chunks: 36 });
    for (const id of ids) expect(await rowsOf(id)).toEqual(none);
  });

  it('waits for a write in flight (a runner that lost its lease and has not noticed) and purges its rows too', async () => {
    await run(a, 30, 1);
    await sql.query(`UPDATE coordinator.task_runs SET lease_expires_at = now() - interval '1 second' WHERE task_id = 30`);
    const writer = a.ds.createQueryRunner();
    await writer.connect();
    try {
      await writer.startTransaction();
      await writer.query(`INSERT INTO coordinator.rounds (task_id, round, status) VALUES (30, 2, 'running')`);
      await writer.query(`INSERT INTO coordinator.checkpoints (task_id, round, weights, sha256) VALUES (30, 2, '\\x00', 'x')`);
      // Recording the deletion does not wait for the write; the purge does.
      await b.deletions.record([30]);
      const purge = b.deletions.purge(30);
      await until('the purge waits for the write', async () => Number((await sql.query(`SELECT count(*) AS n FROM pg_locks WHERE NOT granted`))[0].n) > 0);
      // What the writer adds once the deletion is recorded is refused.
      await writer.query(`INSERT INTO coordinator.round_participants (task_id, round, node_name, phase, status) VALUES (30, 2, 'site-1', 'fit', 'selected')`);
      await writer.commitTransaction();
      expect(await purge).toEqual({ outcome: 'purged', rows: { task_runs: 1, rounds: 2, round_participants: 2, checkpoints: 2, checkpoint_chunks: 3 } });
    } finally {
      await writer.release();
    }
    expect(await rowsOf(30)).toEqual(none);
  });

  it('finds a lease row that slipped in after the purge (a submission racing the deletion) and purges it', async () => {
    await a.deletions.record([40]);
    expect(await a.deletions.purge(40)).toEqual({ outcome: 'purged', rows: none });
    // The race itself cannot be timed here: the row is written past the trigger, as the racing submission would have.
    await sql.transaction(async (m) => {
      await m.query(`SET LOCAL session_replication_role = replica`);
      await m.query(`INSERT INTO coordinator.task_runs (task_id, spec) VALUES (40, '{}')`);
    });
    expect(await a.deletions.unpurged(0, 100)).toContain(40);
    expect(await a.leases.claimable(100)).not.toContain(40);
    expect(await b.deletions.purge(40)).toEqual({ outcome: 'purged', rows: { ...none, task_runs: 1 } });
    expect(await a.deletions.unpurged(0, 100)).toEqual([]);
  });

  it('pages through the deleted tasks in id order', async () => {
    await a.deletions.record([503, 501, 502]);
    expect(await a.deletions.unpurged(500, 2)).toEqual([501, 502]);
    expect(await a.deletions.unpurged(502, 2)).toEqual([503]);
  });
});

/** Polls `check` until it holds, for at most 10 s. */
async function until(what: string, check: () => Promise<boolean>): Promise<void> {
  for (let tries = 0; tries < 200; tries++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting until ${what}`);
}
