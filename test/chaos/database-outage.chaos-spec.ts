import { ChaosPostgres } from '../support/chaos-services';
import { Platform } from '../support/platform';
import { irisTasks, roundReached, storedRounds } from './tasks';

/**
 * PostgreSQL stays down longer than DATABASE_OUTAGE_MAX_S (3 s here; stopped for 6 s), on a cluster of
 * this suite's own. The task fails, once the database is back to record it, with a reason naming the
 * outage and its length, instead of resuming; nothing is half-written. Two coordinators with a 4 s
 * lease: the lease lapses during the outage, so either may claim the task when the database returns,
 * and neither may resume it.
 */
describe('chaos: PostgreSQL down longer than DATABASE_OUTAGE_MAX_S', () => {
  const maxS = 3;
  const outageS = 6;
  let pg: ChaosPostgres;
  let platform: Platform;
  let startTask: (settings: Record<string, unknown>) => Promise<number>;

  beforeAll(async () => {
    pg = await ChaosPostgres.start();
    platform = new Platform({ postgresUrl: pg.url });
    await platform.start({ sites: 3, coordinators: 2, coordinatorEnv: { DATABASE_OUTAGE_MAX_S: String(maxS), LEASE_TTL_S: '4' } });
    startTask = await irisTasks(platform);
  }, 180_000);

  afterAll(async () => {
    try {
      await platform?.stop();
    } finally {
      await pg?.stop();
    }
  }, 90_000);

  const ready = async (app: string) => (await fetch(`http://127.0.0.1:${platform.healthPorts[app]}/health/ready`)).status === 200;
  const coordinators = ['coordinator-1', 'coordinator-2'];

  it('fails the task with a reason naming the outage and its length, with every stored round whole', async () => {
    const id = await startTask({ num_global_iterations: 100, round_timeout_s: 10, local_epochs: 2 });
    await roundReached(platform, id, 2);
    await pg.stopServer();
    const stoppedAt = Date.now();
    for (const c of coordinators) await platform.until(`${c} reports the database down`, async () => !(await ready(c)), 30_000);
    // The outage itself: a deliberate stop of the database, longer than the bound.
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, stoppedAt + outageS * 1000 - Date.now())));
    await pg.startServer();

    const task = await platform.taskWhen(id, ['success', 'failed', 'cancelled'], 60_000);
    expect(task.status).toBe('failed');
    const [, seconds] = /^database unavailable for (\d+) s \(DATABASE_OUTAGE_MAX_S=3\)$/.exec(task.reason) ?? [];
    // Measured by the coordinator from its first failed call to its first answered one (calls every second or so).
    expect(Number(seconds)).toBeGreaterThan(maxS);
    expect(Number(seconds)).toBeLessThan(outageS + 20);

    // Recorded once, by one coordinator, and never resumed.
    const events = await platform.query<{ type: string }>(`SELECT type FROM gateway.task_events WHERE task_id = $1 ORDER BY id`, [id]);
    expect(events.filter((e) => e.type === 'task.failed')).toHaveLength(1);
    expect(events.map((e) => e.type)).not.toContain('task.succeeded');
    const [run] = await platform.query<{ state: string; outcome: string }>(`SELECT state, outcome FROM coordinator.task_runs WHERE task_id = $1`, [id]);
    expect(run).toEqual({ state: 'finished', outcome: 'failed' });
    const logs = coordinators.map((c) => platform.jsonLogLines(c).filter((l) => l.task_id === id).map((l) => String(l.msg)));
    expect(logs.flat().filter((m) => m === `task ${id} failed: ${task.reason}`)).toHaveLength(1);
    expect(logs.flat().filter((m) => /^resuming after round \d+ from its checkpoint$/.test(m))).toEqual([]);

    // Nothing half-written: the completed rounds are whole (figures, participants, checkpoint), in order, as the
    // gateway saw them; the rounds the outage cut short, if any, are marked failed with the task: the one running, and
    // the next one where its fit had gone out with the running round's evaluation (CHAINED_EVALUATION).
    const stored = await storedRounds(platform, id);
    const completed = stored.filter((r) => r.status === 'completed');
    expect(completed.length).toBeGreaterThanOrEqual(2);
    const sequence = Array.from({ length: completed.length }, (_, i) => i + 1);
    expect(completed.map((r) => r.round)).toEqual(sequence);
    const cut = stored.slice(completed.length);
    expect(cut.length).toBeLessThanOrEqual(2);
    expect(cut.map((r) => [r.round, r.status])).toEqual(cut.map((_, i) => [completed.length + 1 + i, 'failed']));
    const checkpoints = await platform.query<{ round: number }>(`SELECT round FROM coordinator.checkpoints WHERE task_id = $1 ORDER BY round`, [id]);
    expect(checkpoints.map((c) => c.round)).toEqual(sequence);
    let figures: { round: number }[] = [];
    await platform.until('the gateway has every stored round', async () => {
      figures = (await platform.fetch('GET', `/tasks/${id}/rounds`)).body;
      return figures.length >= completed.length;
    });
    expect(figures.map((r) => r.round)).toEqual(sequence);
    const versions = (await platform.fetch('GET', '/models/trained_iris/versions')).body;
    expect((Array.isArray(versions) ? versions : []).filter((v: any) => v.tags?.task_id === String(id))).toEqual([]);

    // The platform goes on: a task submitted now runs as usual.
    const next = await startTask({ num_global_iterations: 2, round_timeout_s: 10, local_epochs: 1 });
    expect((await platform.taskWhen(next, ['success', 'failed', 'cancelled'], 60_000)).status).toBe('success');
  });
});
