import { Platform } from '../support/platform';
import { expectCleanSuccess, irisTasks, roundReached, storedRounds } from './tasks';

/**
 * Cancel mid-task reaches the workers in the one way the platform has
 * today: the coordinator stops within one round deadline and sends them no
 * further instruction, so no worker trains for the task after the round that
 * was running. (A worker busy with a round finishes that local training: no
 * cancel message reaches workers and training takes no abort signal; see
 * the README's "Failure scenarios".)
 */
describe('chaos: cancel mid-task', () => {
  const platform = new Platform();
  let startTask: (settings: Record<string, unknown>) => Promise<number>;
  const sites = ['site-1', 'site-2', 'site-3'];

  beforeAll(async () => {
    await platform.start({ sites: 3, coordinators: 1 });
    startTask = await irisTasks(platform);
  }, 120_000);

  afterAll(() => platform.stop(), 60_000);

  /** The rounds each worker trained for a task, from its log. */
  const trained = (site: string, id: number) =>
    platform
      .jsonLogLines(site)
      .filter((l) => l.task_id === id && /^round \d+: trained on \d+ examples/.test(String(l.msg)))
      .map((l) => Number(l.round));

  it('stops the rounds within one round deadline, and no worker trains for the task after the round that was running', async () => {
    const roundTimeoutS = 10;
    const id = await startTask({ num_global_iterations: 10_000, round_timeout_s: roundTimeoutS, local_epochs: 2 });
    await roundReached(platform, id, 3);
    const cancel = await platform.fetch('PUT', `/tasks/cancel/${id}`);
    expect(cancel.status).toBe(200);
    const task = await platform.taskWhen(id, ['success', 'failed', 'cancelled'], roundTimeoutS * 1000);
    expect(task.status).toBe('cancelled');
    const [run] = await platform.query<{ state: string; outcome: string }>(`SELECT state, outcome FROM coordinator.task_runs WHERE task_id = $1`, [id]);
    expect(run).toEqual({ state: 'finished', outcome: 'cancelled' });
    const lastStarted = Math.max(...(await storedRounds(platform, id)).map((r) => r.round));

    // Another task on the same workers: once it has run, each worker has worked
    // through everything queued for it before (one queue each, in order).
    const next = await startTask({ num_global_iterations: 3, round_timeout_s: roundTimeoutS, local_epochs: 2 });
    await expectCleanSuccess(platform, next, 3, 60_000);
    for (const site of sites) {
      expect(trained(site, next)).toEqual([1, 2, 3]);
      const rounds = trained(site, id);
      expect(rounds.length).toBeGreaterThanOrEqual(3);
      expect(Math.max(...rounds)).toBeLessThanOrEqual(lastStarted);
    }
  });
});
