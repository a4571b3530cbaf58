import { DataSource } from 'typeorm';
import { DEFAULT_FL_SETTINGS, TaskSpec } from '@fl/contracts';
import { createMigratedTestDatabase, MigratedTestDatabase } from '../../../../libs/persistence/src/testing';
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
});
