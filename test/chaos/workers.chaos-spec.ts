import { Platform } from '../support/platform';
import { expectCleanSuccess, irisTasks, roundReached, storedRounds } from './tasks';

/**
 * Edge workers killed (SIGKILL: no goodbye, no last answer) mid-task, on the
 * shared RabbitMQ and PostgreSQL (nothing here restarts a server). A round
 * closes at its deadline with what it has if that is min_fit_clients;
 * otherwise it is run again and then the task fails naming the site; a
 * worker started again under its name, or thawed after a freeze long enough
 * for the broker to drop it, takes part again and is never counted twice in
 * a round.
 */
describe('chaos: edge workers killed or frozen mid-task', () => {
  // A dead worker counts as online until its last heartbeat (every 2 s) is this old.
  const onlineWindow = { NODE_ONLINE_WINDOW_S: '8' };
  const platform = new Platform();
  let startTask: (settings: Record<string, unknown>) => Promise<number>;

  beforeAll(async () => {
    await platform.start({ sites: 3, coordinators: 1, coordinatorEnv: { ...onlineWindow, ROUND_RETRIES: '1' }, gatewayEnv: onlineWindow });
    startTask = await irisTasks(platform);
  }, 120_000);

  afterAll(() => platform.stop(), 60_000);

  const fitStatus = (id: number, node: string) =>
    platform.query<{ round: number; status: string }>(
      `SELECT round, status FROM coordinator.round_participants WHERE task_id = $1 AND node_name = $2 AND phase = 'fit' ORDER BY round`,
      [id, node],
    );

  const deadLetters = async () => {
    const line = (await platform.rabbitmqctl('list_queues', '-p', platform.vhostName, 'name', 'messages')).split('\n').find((l) => l.startsWith('fl.dead-letter\t'));
    return Number(line?.split('\t')[1] ?? 0);
  };

  async function restartSite(name: string): Promise<void> {
    platform.restart(name);
    await platform.sitesOnline(3);
  }

  it('closes the round at round_timeout_s with the updates it has when a worker is SIGKILLed and min_fit_clients are left', async () => {
    const rounds = 150;
    const roundTimeoutS = 2;
    const id = await startTask({ num_global_iterations: rounds, min_fit_clients: 2, round_timeout_s: roundTimeoutS, local_epochs: 2 });
    await roundReached(platform, id, 3);
    expect(await platform.kill('site-3', 'SIGKILL')).toBe('SIGKILL');
    const killedAfter = (await storedRounds(platform, id)).filter((r) => r.status === 'completed').length;

    await expectCleanSuccess(platform, id, rounds, 120_000);
    const stored = await storedRounds(platform, id);
    const missed = (await fitStatus(id, 'site-3')).filter((r) => r.status === 'missing').map((r) => r.round);
    // Each round site-3 was still asked in (it looked online) waited for it until the deadline, then went on with two.
    expect(missed.length).toBeGreaterThan(0);
    for (const round of missed) {
      const r = stored[round - 1];
      expect(r).toMatchObject({ status: 'completed', participants: 2 });
      expect(r.duration_ms).toBeGreaterThanOrEqual(roundTimeoutS * 1000);
    }
    expect(Math.min(...missed)).toBeGreaterThan(killedAfter - 1);
    // Once the window passed it was no longer chosen: the last rounds ran on two sites at full speed.
    expect(stored[rounds - 1].participants).toBe(2);
    expect(stored[rounds - 1].duration_ms).toBeLessThan(roundTimeoutS * 1000);

    await restartSite('site-3');
  });

  it('runs the round again and then fails the task naming the site when a SIGKILLed worker leaves fewer than min_fit_clients', async () => {
    const roundTimeoutS = 2;
    const id = await startTask({ num_global_iterations: 300, min_fit_clients: 3, round_timeout_s: roundTimeoutS, local_epochs: 2 });
    await roundReached(platform, id, 2);
    expect(await platform.kill('site-3', 'SIGKILL')).toBe('SIGKILL');

    const task = await platform.taskWhen(id, ['success', 'failed', 'cancelled'], 60_000);
    expect(task.status).toBe('failed');
    expect(task.reason).toMatch(/^round \d+: 2 usable update\(s\) from 3 worker\(s\), min_fit_clients is 3; no answer within 2 s from site-3 \(after 1 retry of the round\)$/);
    const failedRound = Number(/^round (\d+)/.exec(task.reason)![1]);
    expect((await fitStatus(id, 'site-3')).find((r) => r.round === failedRound)?.status).toBe('missing');
    expect((await storedRounds(platform, id)).find((r) => r.round === failedRound)?.status).toBe('failed');
    const [run] = await platform.query<{ state: string; outcome: string }>(`SELECT state, outcome FROM coordinator.task_runs WHERE task_id = $1`, [id]);
    expect(run).toEqual({ state: 'finished', outcome: 'failed' });

    await restartSite('site-3');
  });

  it('takes a worker frozen (SIGSTOP) until the broker dropped its connection back once thawed: it reconnects by itself', async () => {
    // More rounds than it will run: the task is cancelled once site-3 has taken part again, however quick rounds are
    // here (with 300 rounds, a fast machine finished the task before the broker had even dropped the frozen site).
    const id = await startTask({ num_global_iterations: 10_000, min_fit_clients: 2, round_timeout_s: 2, local_epochs: 2 });
    await roundReached(platform, id, 3);
    const connected = async () =>
      (await platform.rabbitmqctl('list_connections', 'vhost', 'user')).split('\n').some((l) => l.startsWith(`${platform.vhostName}\tsite-3`));
    const deadLettered = await deadLetters();
    platform.signal('site-3', 'SIGSTOP');
    try {
      await platform.until('the broker has dropped the frozen site-3 (missed heartbeats)', async () => !(await connected()), 60_000, 500);
    } finally {
      platform.signal('site-3', 'SIGCONT');
    }
    const thawedAfter = (await storedRounds(platform, id)).filter((r) => r.status === 'completed').length;
    await platform.until('site-3 is connected again', connected, 30_000);
    await platform.until(
      'site-3 takes part in a round again',
      async () => (await fitStatus(id, 'site-3')).some((r) => r.status === 'received' && r.round > thawedAfter + 1),
      60_000,
    );
    expect((await platform.fetch('PUT', `/tasks/cancel/${id}`)).status).toBe(200);
    expect((await platform.taskWhen(id, ['success', 'failed', 'cancelled'], 60_000)).status).toBe('cancelled');

    const site3 = await fitStatus(id, 'site-3');
    expect(site3.some((r) => r.status === 'missing' && r.round <= thawedAfter + 1)).toBe(true);
    // Every completed round, in order, counts exactly the sites whose update it received, each once.
    const stored = (await storedRounds(platform, id)).filter((r) => r.status === 'completed');
    expect(stored.map((r) => r.round)).toEqual(Array.from({ length: stored.length }, (_, i) => i + 1));
    const received = await platform.query<{ round: number; sites: number; examples: number }>(
      `SELECT round, count(*)::int AS sites, sum(examples)::int AS examples FROM coordinator.round_participants
       WHERE task_id = $1 AND phase = 'fit' AND status = 'received' AND round <= $2 GROUP BY round ORDER BY round`,
      [id, stored.length],
    );
    expect(received.map((r) => [r.round, r.sites, r.examples])).toEqual(stored.map((r) => [r.round, r.participants, r.examples]));
    // What it answered for rounds that had closed meanwhile was acknowledged and ignored, not dead-lettered.
    const late = platform.jsonLogLines('coordinator-1').filter((l) => new RegExp(`^task ${id} round \\d+ fit: answer from site-3 ignored \\(closed\\)$`).test(String(l.msg)));
    expect(late.length).toBeGreaterThan(0);
    expect(await deadLetters()).toBe(deadLettered);
  });

  it('takes a worker that was SIGKILLed and started again back into later rounds, never counting it twice in one', async () => {
    const rounds = 150;
    const id = await startTask({ num_global_iterations: rounds, min_fit_clients: 2, round_timeout_s: 2, local_epochs: 2 });
    await roundReached(platform, id, 3);
    expect(await platform.kill('site-2', 'SIGKILL')).toBe('SIGKILL');
    const killedAfter = (await storedRounds(platform, id)).filter((r) => r.status === 'completed').length;
    platform.restart('site-2');

    await expectCleanSuccess(platform, id, rounds, 120_000);
    const site2 = await fitStatus(id, 'site-2');
    const back = site2.filter((r) => r.round > killedAfter + 1 && r.status === 'received').map((r) => r.round);
    expect(back.length).toBeGreaterThan(0);
    // From its first update after the restart on, it took part in every round.
    const firstBack = Math.min(...back);
    expect(site2.filter((r) => r.round >= firstBack).map((r) => r.status)).toEqual(Array(rounds - firstBack + 1).fill('received'));
    const stored = await storedRounds(platform, id);
    expect(Math.max(...stored.map((r) => r.participants))).toBe(3);
    expect(stored[rounds - 1].participants).toBe(3);
  });
});
