import { ChaosRabbitMq } from '../support/chaos-services';
import { Platform } from '../support/platform';
import { expectCleanSuccess, irisTasks, roundReached } from './tasks';

/**
 * The broker goes away mid-task: its application stopped and started
 * (`rabbitmqctl stop_app` / `start_app`), and the whole node stopped and
 * booted again. On a RabbitMQ node of this suite's own, never the shared one.
 * Every app reconnects by itself (no restart), the task succeeds, and no
 * round is applied twice.
 */
describe('chaos: the broker restarts mid-task', () => {
  let rabbit: ChaosRabbitMq;
  let platform: Platform;
  let startTask: (settings: Record<string, unknown>) => Promise<number>;
  const apps = ['gateway', 'coordinator-1', 'site-1', 'site-2', 'site-3'];

  beforeAll(async () => {
    rabbit = await ChaosRabbitMq.start();
    platform = new Platform({ broker: rabbit.broker });
    await platform.start({ sites: 3, coordinators: 1 });
    startTask = await irisTasks(platform);
  }, 180_000);

  afterAll(async () => {
    try {
      await platform?.stop();
    } finally {
      await rabbit?.stop();
    }
  }, 90_000);

  /** How many times each app has logged that it lost the broker. */
  const disconnects = () =>
    apps.map((app) => platform.jsonLogLines(app).filter((l) => String(l.msg).startsWith('disconnected from ')).length);

  /** Every app's connection is back on the broker (each app holds exactly one). */
  async function allReconnected(): Promise<void> {
    await platform.until('every app is connected to the broker again', async () => {
      const out = await rabbit.ctl('list_connections', 'vhost', 'state');
      const ours = out.split('\n').filter((l) => l.startsWith(`${platform.vhostName}\t`) && l.endsWith('\trunning'));
      return ours.length === apps.length;
    }, 60_000);
  }

  async function outage(id: number, rounds: number, down: () => Promise<unknown>, up: () => Promise<unknown>): Promise<void> {
    await roundReached(platform, id, 3);
    const before = disconnects();
    await down();
    await platform.until('every app has noticed the broker is gone', async () => disconnects().every((n, i) => n > before[i]), 30_000);
    const during = (await platform.fetch('GET', `/tasks/${id}`)).body;
    expect(during.status).toBe('running');
    await up();
    await allReconnected();
    await expectCleanSuccess(platform, id, rounds, 150_000);
    expect(((await platform.fetch('GET', '/nodes')).body as { status: string }[]).map((n) => n.status)).toEqual(['online', 'online', 'online']);
  }

  it('every app reconnects after rabbitmqctl stop_app / start_app, and the task succeeds with each round applied once', async () => {
    // Enough rounds that the task still runs once every app has noticed the broker gone (a node takes seconds to stop).
    const rounds = 300;
    const id = await startTask({ num_global_iterations: rounds, round_timeout_s: 10, local_epochs: 2 });
    await outage(id, rounds, () => rabbit.stopApp(), () => rabbit.startApp());
  });

  it('every app reconnects after a full restart of the node, and the task succeeds with each round applied once', async () => {
    // Enough rounds that the task still runs once every app has noticed the broker gone (a node takes seconds to stop).
    const rounds = 300;
    const id = await startTask({ num_global_iterations: rounds, round_timeout_s: 10, local_epochs: 2 });
    await outage(id, rounds, () => rabbit.stopNode(), () => rabbit.startAgain());
  });
});
