import { ChaosPostgres } from '../support/chaos-services';
import { Platform } from '../support/platform';
import { expectCleanSuccess, irisTasks, roundReached } from './tasks';

/**
 * PostgreSQL restarts mid-task (`pg_ctl stop -m fast`: every session is
 * terminated, then the server starts again), on a cluster of this suite's
 * own, never the shared one. The coordinator notices (its readiness check
 * fails), the task succeeds once the database is back, and nothing is
 * half-written: every round is stored once, with its checkpoint.
 */
describe('chaos: PostgreSQL restarts mid-task', () => {
  let pg: ChaosPostgres;
  let platform: Platform;
  let startTask: (settings: Record<string, unknown>) => Promise<number>;

  beforeAll(async () => {
    pg = await ChaosPostgres.start();
    platform = new Platform({ postgresUrl: pg.url });
    await platform.start({ sites: 3, coordinators: 1 });
    startTask = await irisTasks(platform);
  }, 180_000);

  afterAll(async () => {
    try {
      await platform?.stop();
    } finally {
      await pg?.stop();
    }
  }, 90_000);

  const coordinatorReady = async () => (await fetch(`http://127.0.0.1:${platform.healthPorts['coordinator-1']}/health/ready`)).status === 200;

  it('the task succeeds after a restart of the database, with every round stored once', async () => {
    // Enough rounds that the task still runs once the coordinator has noticed the outage.
    const rounds = 300;
    const id = await startTask({ num_global_iterations: rounds, round_timeout_s: 10, local_epochs: 2 });
    await roundReached(platform, id, 3);
    await pg.stopServer();
    await platform.until('the coordinator reports the database down', async () => !(await coordinatorReady()), 30_000);
    await pg.startServer();
    await platform.until('the coordinator reports the database back', coordinatorReady, 30_000);
    await expectCleanSuccess(platform, id, rounds, 120_000);
    // It was never reported failed: the outage interrupted the run, which resumed from its checkpoint.
    const events = await platform.query<{ type: string }>(`SELECT type FROM gateway.task_events WHERE task_id = $1 ORDER BY id`, [id]);
    expect(events.map((e) => e.type)).not.toContain('task.failed');
    const log = platform.jsonLogLines('coordinator-1').filter((l) => l.task_id === id).map((l) => String(l.msg));
    expect(log.filter((m) => m.startsWith(`task ${id}: the database is unavailable`)).length).toBeGreaterThan(0);
    expect(log.filter((m) => /^resuming after round \d+ from its checkpoint$/.test(m)).length).toBeGreaterThan(0);
  });
});
