import { Platform } from '../support/platform';
import { expectCleanSuccess, irisTasks, roundReached, storedRounds } from './tasks';

/**
 * Cancel mid-task reaches the workers: the coordinator stops within one round
 * deadline and sends no further instruction, and a worker in the middle of its
 * local training stops after the batch it is on (the cancel comes on its
 * control queue, beside the work queue that holds the training instruction).
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

  it('stops the local training of every worker within one batch of the cancel reaching it', async () => {
    // Batches of one row for 10,000 epochs: over a minute of training per round unless stopped.
    const id = await startTask({ num_global_iterations: 2, round_timeout_s: 3600, local_epochs: 10_000, batch_size: 1 });
    const logged = (site: string, pattern: RegExp) => platform.jsonLogLines(site).filter((l) => l.task_id === id && pattern.test(String(l.msg)));
    await platform.until('every worker is training round 1', async () => sites.every((s) => logged(s, /^round 1: training on \d+ examples/).length === 1));
    expect((await platform.fetch('PUT', `/tasks/cancel/${id}`)).status).toBe(200);
    expect((await platform.taskWhen(id, ['success', 'failed', 'cancelled'], 60_000)).status).toBe('cancelled');
    const stopped = /^task \d+ round 1: training stopped after (\d+) batch\(es\), task cancelled \(the cancel arrived after batch (\d+)\)$/;
    await platform.until('every worker stopped training', async () => sites.every((s) => logged(s, stopped).length === 1), 60_000);
    const examples = Number(/on (\d+) examples/.exec(String(logged('site-1', /^round 1: training on/)[0].msg))![1]);
    for (const site of sites) {
      const [, ran, atCancel] = stopped.exec(String(logged(site, stopped)[0].msg))!.map(Number);
      expect([site, ran - atCancel <= 1]).toEqual([site, true]);
      expect(ran).toBeLessThan(examples * 10_000);
      // Nothing was trained to the end: no update reached the coordinator for the round.
      expect(logged(site, /^round 1: trained on/)).toEqual([]);
    }
  }, 180_000);
});
