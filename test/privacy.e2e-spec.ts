import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PrivacyAccountant } from '@fl/aggregation';
import { bundledDataDir, getUseCase, loadLabeledCsv } from '@fl/datasets';
import { createModelRunner, readModelPackage } from '@fl/models';
import { Platform } from './support/platform';

/**
 * Differential privacy and the update-norm bound set per task through the
 * REST API, and the operator's server-side evaluation, run by a coordinator
 * with three edge workers on real RabbitMQ and PostgreSQL.
 */
describe('differential privacy, update bounds and server-side evaluation', () => {
  // The operator's held-out set: here all of iris (the sites hold shuffled thirds of it).
  const heldOut = join(bundledDataDir(), 'iris.csv');
  const platform = new Platform();
  let model: { name: string; version: number };
  const body = (extra: object) => ({
    user_id: '1',
    use_case: 'iris',
    model_name: model.name,
    model_version: model.version,
    num_global_iterations: 3,
    run_name: 'privacy',
    experiment_name: 'Default',
    min_fit_clients: 3,
    ...extra,
  });
  const taskCount = async () => Number((await platform.query<{ n: string }>('SELECT count(*) AS n FROM gateway.tasks'))[0].n);

  beforeAll(async () => {
    await platform.start({ sites: 3, coordinators: 1, coordinatorEnv: { SERVER_EVAL_DATA: heldOut } });
    model = JSON.parse(await platform.cli('models', 'publish', 'iris', '--json'));
  }, 120_000);

  afterAll(async () => {
    await platform.stop();
  }, 60_000);

  it.each([
    [{ privacy: { noise_multiplier: 1 } }, 'privacy.clipping_norm', "parameter 'clipping_norm' is required"],
    [{ privacy: { noise_multiplier: 1, clipping_norm: 1, delta: 0 } }, 'privacy.delta', "parameter 'delta' must be a number in (0, 1)"],
    [{ strategy: 'FedMedian', privacy: { noise_multiplier: 1, clipping_norm: 1 } }, 'privacy.mode', 'central differential privacy needs a strategy that averages'],
    [{ max_update_norm: -1 }, 'max_update_norm', 'max_update_norm must not be less than 0'],
  ])('refuses %j with a 400 naming %s, storing nothing', async (extra, field, message) => {
    const before = await taskCount();
    const res = await platform.fetch('POST', '/tasks', body(extra));
    expect(res.status).toBe(400);
    expect(JSON.stringify(res.body)).toContain(message);
    expect(res.body.details).toEqual(expect.arrayContaining([expect.objectContaining({ field })]));
    expect(await taskCount()).toBe(before);
  });

  it('central noise: epsilon per round, in the task and the model tags; the budget stops the task before the round that would exceed it', async () => {
    const z = 0.8;
    // All three workers are asked each round: q = 1. Room for exactly two rounds.
    const acc = new PrivacyAccountant(1e-5);
    acc.addRounds(1, z);
    const afterOne = acc.spent().epsilon;
    acc.addRounds(1, z);
    const afterTwo = acc.spent().epsilon;
    const budget = afterTwo * 1.0001;
    const created = await platform.fetch('POST', '/tasks', body({ num_global_iterations: 6, privacy: { noise_multiplier: z, clipping_norm: 2, epsilon_budget: budget } }));
    expect(created.status).toBe(200);
    expect(created.body.privacy).toEqual({ mode: 'central', noise_multiplier: z, clipping_norm: 2, adaptive_clipping: false, target_clipped_quantile: 0.5, clip_norm_lr: 0.2, delta: 1e-5, epsilon_budget: budget });
    const task = await platform.taskWhen(created.body.id, ['success', 'failed', 'cancelled'], 120_000);
    expect(task.status).toBe('success');
    expect(task.reason).toMatch(new RegExp(`^privacy budget reached: round 3 would take epsilon from ${afterTwo.toFixed(3)} to \\d+\\.\\d+, beyond epsilon_budget`));
    const rounds = (await platform.fetch('GET', `/tasks/${task.id}/rounds`)).body;
    expect(rounds.map((r: { round: number }) => r.round)).toEqual([1, 2]);
    expect(rounds[0].epsilon).toBeCloseTo(afterOne, 9);
    expect(rounds[1].epsilon).toBeCloseTo(afterTwo, 9);
    expect(task.metrics).toMatchObject({ rounds: 2, delta: 1e-5 });
    expect(task.metrics.epsilon).toBeCloseTo(afterTwo, 9);
    const [version] = await platform.query<{ tags: Record<string, string> }>(`SELECT tags FROM registry.model_versions WHERE name = 'trained_iris' AND tags->>'task_id' = $1`, [String(task.id)]);
    expect(version.tags).toMatchObject({ dp_mode: 'central', dp_noise_multiplier: String(z), dp_delta: String(1e-5), dp_rounds: '2' });
    expect(Number(version.tags.dp_epsilon)).toBeCloseTo(afterTwo, 9);
  }, 180_000);

  it('a budget too small for one round fails the task, saying so', async () => {
    const created = await platform.fetch('POST', '/tasks', body({ privacy: { noise_multiplier: 0.8, clipping_norm: 2, epsilon_budget: 0.01 } }));
    const task = await platform.taskWhen(created.body.id, ['success', 'failed', 'cancelled'], 120_000);
    expect(task.status).toBe('failed');
    expect(task.reason).toMatch(/^privacy budget reached: round 1 would take epsilon from 0\.000 to /);
    expect(task.result_model_version).toBeNull();
  }, 180_000);

  it('local noise: each worker clips and noises its own update; the task trains and reports epsilon at q = 1', async () => {
    const created = await platform.fetch('POST', '/tasks', body({ privacy: { mode: 'local', noise_multiplier: 0.05, clipping_norm: 50 } }));
    const task = await platform.taskWhen(created.body.id, ['success', 'failed', 'cancelled'], 120_000);
    expect(task.reason).toBeNull();
    expect(task.status).toBe('success');
    const acc = new PrivacyAccountant(1e-5);
    acc.addRounds(1, 0.05, 3);
    expect(task.metrics.epsilon).toBeCloseTo(acc.spent().epsilon, 6);
    const rounds = (await platform.fetch('GET', `/tasks/${task.id}/rounds`)).body;
    const perRound = [1, 2, 3].map((k) => {
      const a = new PrivacyAccountant(1e-5);
      a.addRounds(1, 0.05, k);
      return a.spent().epsilon;
    });
    rounds.forEach((r: { epsilon: number }, i: number) => expect(r.epsilon).toBeCloseTo(perRound[i], 6));
  }, 180_000);

  it('an update-norm bound no update meets: every update refused, the task fails naming the sites and the bound', async () => {
    const created = await platform.fetch('POST', '/tasks', body({ max_update_norm: 1e-6, num_global_iterations: 1 }));
    expect(created.body.max_update_norm).toBe(1e-6);
    const task = await platform.taskWhen(created.body.id, ['success', 'failed', 'cancelled'], 120_000);
    expect(task.status).toBe('failed');
    for (const site of ['site-1', 'site-2', 'site-3']) expect(task.reason).toMatch(new RegExp(`${site}: L2 norm of the update \\(difference to the global weights\\) is [0-9.e+-]+, beyond the bound 0\\.000001`));
    const refused = await platform.query<{ node_name: string; status: string }>(
      `SELECT DISTINCT node_name, status FROM coordinator.round_participants WHERE task_id = $1 AND phase = 'fit' AND status <> 'selected' ORDER BY node_name`,
      [task.id],
    );
    expect(refused).toEqual(['site-1', 'site-2', 'site-3'].map((node_name) => ({ node_name, status: 'rejected' })));
  }, 180_000);

  it("evaluates every round's new weights on the operator's held-out rows, beside the sites' evaluations", async () => {
    const created = await platform.fetch('POST', '/tasks', body({}));
    const task = await platform.taskWhen(created.body.id, ['success', 'failed', 'cancelled'], 120_000);
    expect(task.status).toBe('success');
    const rounds = (await platform.fetch('GET', `/tasks/${task.id}/rounds`)).body;
    expect(rounds).toHaveLength(3);
    for (const r of rounds) expect(r).toMatchObject({ server_eval_examples: 150, server_eval_loss: expect.any(Number), server_eval_accuracy: expect.any(Number) });
    // The last round's figure is the registered model on those rows.
    const dir = join(platform.artifactDir, 'trained_iris', String(task.result_model_version));
    const files = Object.fromEntries(readdirSync(dir).map((f) => [f, readFileSync(join(dir, f))]));
    const pkg = readModelPackage(files);
    const runner = await createModelRunner(pkg);
    try {
      const r = await runner.evaluate(pkg.initialWeights, loadLabeledCsv(heldOut, getUseCase('iris')));
      expect(rounds[2].server_eval_accuracy).toBe(r.accuracy);
      expect(rounds[2].server_eval_loss).toBeCloseTo(r.loss, 9);
      expect(r.accuracy).toBeGreaterThanOrEqual(0.8);
    } finally {
      await runner.release();
    }
  }, 180_000);
});
