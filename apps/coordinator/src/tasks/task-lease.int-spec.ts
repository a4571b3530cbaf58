import { DataSource } from 'typeorm';
import { DEFAULT_FL_SETTINGS, TaskSpec } from '@fl/contracts';
import { createMigratedTestDatabase, MigratedTestDatabase } from '../../../../libs/persistence/src/testing';
import { CancelledRounds1767225600014 } from '../../../../libs/persistence/src/migrations/1767225600014-cancelled-rounds';
import { CoordinatorConfig } from '../config';
import { TaskLeases } from './task-lease.service';

/** Task ownership between two coordinators on one real PostgreSQL database. */
describe('TaskLeases (PostgreSQL)', () => {
  let db: MigratedTestDatabase;
  let a: TaskLeases;
  let b: TaskLeases;
  let sql: DataSource;

  const spec = (taskId: number): TaskSpec => ({
    task_id: taskId, user_id: '1', use_case: 'iris', model_name: 'iris', model_version: 1, num_global_iterations: 3,
    run_name: 'r', experiment_name: 'e', settings: { ...DEFAULT_FL_SETTINGS },
  });

  async function coordinator(id: string): Promise<TaskLeases> {
    return new TaskLeases(await db.connect(), Object.assign(new CoordinatorConfig(), { COORDINATOR_ID: id, LEASE_TTL_S: 30 }));
  }

  beforeAll(async () => {
    db = await createMigratedTestDatabase('fl_lease');
    sql = db.sql;
    a = await coordinator('coord-a');
    b = await coordinator('coord-b');
  });

  afterAll(() => db.drop());

  it('lets exactly one of two coordinators claim a task, however often both try', async () => {
    for (let id = 1; id <= 20; id++) {
      await Promise.all([a.enqueue(spec(id)), b.enqueue(spec(id))]);
      const claims = await Promise.all([a.claim(id), b.claim(id), a.claim(id), b.claim(id)]);
      const owners = await sql.query(`SELECT owner FROM coordinator.task_runs WHERE task_id = $1`, [id]);
      const winner = owners[0].owner;
      expect(['coord-a', 'coord-b']).toContain(winner);
      // The holder may re-claim its own task (idempotent); the other never gets it.
      const loserClaims = winner === 'coord-a' ? [claims[1], claims[3]] : [claims[0], claims[2]];
      expect(loserClaims).toEqual([null, null]);
    }
  });

  it('keeps a renewed lease and lets another coordinator take over a lapsed one', async () => {
    await a.enqueue(spec(100));
    expect(await a.claim(100)).toMatchObject({ task_id: 100, cancel_requested: false, lapsed_s: null });
    expect(await a.renew(100)).toBe(true);
    expect(await b.renew(100)).toBe(false);
    expect(await b.claim(100)).toBeNull();
    expect(await b.claimable()).not.toContain(100);
    // The holder died: its lease lapses.
    await sql.query(`UPDATE coordinator.task_runs SET lease_expires_at = now() - interval '40 seconds' WHERE task_id = 100`);
    expect(await b.claimable()).toContain(100);
    // The claim says how long ago the lease lapsed (DATABASE_OUTAGE_MAX_S: did it lapse during an outage?).
    const taken = await b.claim(100);
    expect(taken).toMatchObject({ task_id: 100 });
    expect(taken!.lapsed_s).toBeGreaterThanOrEqual(40);
    expect(taken!.lapsed_s).toBeLessThan(60);
    expect(await b.claim(100)).toMatchObject({ task_id: 100, lapsed_s: null });
    expect(await a.renew(100)).toBe(false);
  });

  it('hands a task back on shutdown and never hands out a finished one', async () => {
    await a.enqueue(spec(200));
    await a.claim(200);
    await a.release(200);
    expect(await b.claim(200)).toMatchObject({ task_id: 200, lapsed_s: null });
    await b.finish(200, 'success');
    expect(await a.claim(200)).toBeNull();
    expect(await a.claimable()).not.toContain(200);
  });

  it('cancels a queued task once, and flags a running one', async () => {
    await a.enqueue(spec(300));
    expect(await b.requestCancel(300)).toEqual({ state: 'queued', owner: null });
    expect(await b.cancelIfQueued(300)).toBe(true);
    expect(await a.cancelIfQueued(300)).toBe(false);
    expect(await a.claim(300)).toBeNull();

    await a.enqueue(spec(301));
    await a.claim(301);
    expect(await b.requestCancel(301)).toEqual({ state: 'running', owner: 'coord-a' });
    expect(await b.cancelIfQueued(301)).toBe(false);
    expect(await a.isCancelRequested(301)).toBe(true);
    expect(await b.requestCancel(999)).toBeNull();
  });

  async function roundsOf(taskId: number): Promise<{ round: number; status: string; finished: boolean }[]> {
    return sql.query(`SELECT round, status, finished_at IS NOT NULL AS finished FROM coordinator.rounds WHERE task_id = $1 ORDER BY round`, [taskId]);
  }

  async function runningTask(taskId: number): Promise<void> {
    await a.enqueue(spec(taskId));
    await a.claim(taskId);
    // Round 1 stored; round 2 running, and round 3's chained fit already out.
    await sql.query(
      `INSERT INTO coordinator.rounds (task_id, round, status, started_at, finished_at) VALUES
         ($1, 1, 'completed', now(), now()), ($1, 2, 'running', now(), NULL), ($1, 3, 'running', now(), NULL)`,
      [taskId],
    );
  }

  it('leaves no round running when a task ends: cancelled ones with a cancelled task, failed ones with a failed task', async () => {
    await runningTask(400);
    await a.finish(400, 'cancelled');
    expect(await roundsOf(400)).toEqual([
      { round: 1, status: 'completed', finished: true },
      { round: 2, status: 'cancelled', finished: true },
      { round: 3, status: 'cancelled', finished: true },
    ]);
    await runningTask(401);
    await a.finish(401, 'failed');
    expect((await roundsOf(401)).map((r) => r.status)).toEqual(['completed', 'failed', 'failed']);
    // Another task's rounds are not touched.
    await runningTask(402);
    await a.finish(402, 'success');
    expect((await roundsOf(402)).map((r) => r.status)).toEqual(['completed', 'running', 'running']);
  });

  it('marks the rounds an earlier release left running in cancelled tasks as cancelled, and only those', async () => {
    await runningTask(500);
    await runningTask(501);
    // What an earlier release did on cancel: the task finished, its rounds left as they were.
    await sql.query(`UPDATE coordinator.task_runs SET state = 'finished', outcome = 'cancelled' WHERE task_id = 500`);
    const runner = sql.createQueryRunner();
    try {
      await new CancelledRounds1767225600014().up(runner);
    } finally {
      await runner.release();
    }
    expect(await roundsOf(500)).toEqual([
      { round: 1, status: 'completed', finished: true },
      { round: 2, status: 'cancelled', finished: true },
      { round: 3, status: 'cancelled', finished: true },
    ]);
    expect((await roundsOf(501)).map((r) => r.status)).toEqual(['completed', 'running', 'running']);
    await expect(sql.query(`UPDATE coordinator.rounds SET status = 'lost' WHERE task_id = 501 AND round = 2`)).rejects.toThrow(/rounds_status_check/);
  });
});
