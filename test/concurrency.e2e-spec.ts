import { Platform } from './support/platform';

/**
 * Many tasks at once: ten tasks on two coordinators and six edge workers all
 * succeed, each round of each task aggregating exactly the answers meant for
 * it (a worker serves every task, one message at a time).
 */
describe('ten concurrent tasks on two coordinators and six workers', () => {
  const platform = new Platform();

  beforeAll(async () => {
    await platform.start({ sites: 6, coordinators: 2 });
    await platform.cli('models', 'publish', 'iris');
  }, 120_000);

  afterAll(() => platform.stop(), 60_000);

  it('runs them all to success, each with its own rounds, checkpoints and model', async () => {
    const rounds = 3;
    const ids: number[] = [];
    for (let i = 0; i < 10; i++) {
      const res = await platform.fetch('POST', '/tasks', {
        user_id: `user-${i}`, use_case: 'iris', model_name: 'iris', model_version: 1, num_global_iterations: rounds,
        run_name: `concurrent-${i}`, experiment_name: 'Default', min_fit_clients: 6, seed: i,
      });
      expect(res.status).toBe(200);
      ids.push(res.body.id);
    }
    const tasks = await Promise.all(ids.map((id) => platform.taskWhen(id, ['success', 'failed', 'cancelled'], 120_000)));
    expect(tasks.map((t) => [t.id, t.status, t.reason])).toEqual(ids.map((id) => [id, 'success', null]));

    const iris = 150;
    for (const id of ids) {
      const figures = (await platform.fetch('GET', `/tasks/${id}/rounds`)).body as { round: number; participants: number; examples: number; eval_examples: number }[];
      // Every site's update went into this task's aggregate exactly once per round: the counts add up to the data set.
      expect(figures.map((r) => [r.round, r.participants, r.examples + r.eval_examples])).toEqual([1, 2, 3].map((r) => [r, 6, iris]));
    }
    const checkpoints = await platform.query<{ sha256: string }>(`SELECT sha256 FROM coordinator.checkpoints WHERE task_id = ANY($1)`, [ids]);
    expect(checkpoints).toHaveLength(10 * rounds);
    expect(new Set(checkpoints.map((c) => c.sha256)).size).toBe(10 * rounds); // different seeds, different weights
    const versions = await platform.query<{ task_id: string }>(`SELECT tags->>'task_id' AS task_id FROM registry.model_versions WHERE name = 'trained_iris'`);
    expect(versions.map((v) => Number(v.task_id)).sort((a, b) => a - b)).toEqual([...ids].sort((a, b) => a - b));
  });
});
