import { bundledDataDir } from '@fl/datasets';
import { join } from 'node:path';
import { Platform } from './support/platform';

/**
 * Ten sites on digits, simulated (apps/simulator: ten virtual edge workers in
 * one process, each with its own queue, name and shard) against a real
 * gateway and coordinator over the real broker and database.
 *
 *  - Robustness: two of the ten are hostile, one sending its update
 *    sign-flipped (global - u) and one sign-flipped and scaled ten times
 *    (global - 10 u). FedAvg collapses; Krum (keeping 6), the trimmed mean
 *    and the median stay within 2 points of their own runs without them.
 *  - Non-IID: Dirichlet(0.3) label skew; FedAdam against FedAvg and FedProx
 *    in the same number of rounds.
 *
 * Training is seeded end to end (shards, shuffles, initial weights), so each
 * run gives the same figures; the ones measured are in the comments and the
 * README ("Measured").
 */
describe('ten simulated sites on digits: hostile sites and skewed data', () => {
  const platform = new Platform();
  let model: { name: string; version: number };
  const DIGITS = join(bundledDataDir(), 'digits.csv');
  const measured: Record<string, number> = {};

  async function accuracy(label: string, strategy: string, strategy_params: Record<string, number>, rounds: number, localEpochs: number): Promise<number> {
    const created = await platform.fetch('POST', '/tasks', {
      user_id: '1',
      use_case: 'digits',
      model_name: model.name,
      model_version: model.version,
      num_global_iterations: rounds,
      run_name: label,
      experiment_name: 'Default',
      min_fit_clients: 10,
      local_epochs: localEpochs,
      batch_size: 32,
      learning_rate: 0.1,
      strategy,
      strategy_params,
    });
    expect(created.status).toBe(200);
    const task = await platform.taskWhen(created.body.id, ['success', 'failed', 'cancelled'], 300_000);
    expect(task.reason).toBeNull();
    expect(task.status).toBe('success');
    const figures = (await platform.fetch('GET', `/tasks/${task.id}/rounds`)).body as { participants: number }[];
    expect(figures).toHaveLength(rounds);
    for (const f of figures) expect(f.participants).toBe(10);
    measured[label] = task.metrics.eval_accuracy;
    return task.metrics.eval_accuracy;
  }

  async function simulate(env: Record<string, string>): Promise<void> {
    await platform.startSimulator('simulator', 10, { SIM_NODE_PREFIX: 'sim', USE_CASES: 'digits', DATA_PATH: DIGITS, SIM_SEED: '7', ...env });
  }

  async function stopSimulator(): Promise<void> {
    await platform.kill('simulator', 'SIGTERM');
    await platform.until('no virtual worker is online', async () => ((await platform.fetch('GET', '/nodes')).body as { status: string }[]).every((n) => n.status !== 'online'), 30_000);
  }

  beforeAll(async () => {
    await platform.provision();
    await platform.startGateway();
    await platform.startCoordinators(1, { SITE_AUTH: 'none' });
    model = JSON.parse(await platform.cli('models', 'publish', 'digits', '--json'));
  }, 120_000);

  afterAll(async () => {
    // What was measured, for the README; the assertions are below.
    console.log(`accuracies on the sites' held-out rows: ${JSON.stringify(measured, null, 1)}`);
    await platform.stop();
  }, 60_000);

  const ROBUST: [string, string, Record<string, number>][] = [
    ['krum', 'Krum', { num_malicious_clients: 2, num_clients_to_keep: 6 }],
    ['trimmed', 'FedTrimmedAvg', { beta: 0.2 }],
    ['median', 'FedMedian', {}],
  ];

  it('two hostile sites wreck FedAvg; Krum, the trimmed mean and the median stay within 2 points', async () => {
    const clean: Record<string, number> = {};
    await simulate({ SIM_PARTITION: 'iid' });
    clean.fedavg = await accuracy('fedavg-clean', 'FedAvg', {}, 10, 2);
    for (const [label, strategy, params] of ROBUST) clean[label] = await accuracy(`${label}-clean`, strategy, params, 10, 2);
    await stopSimulator();

    await simulate({ SIM_PARTITION: 'iid', SIM_HOSTILE: 'sim-1:sign-flip,sim-2:scale:-10' });
    const fedavg = await accuracy('fedavg-hostile', 'FedAvg', {}, 10, 2);
    // Visibly: at least 20 points lost (measured in-process on the same setting: 0.91 -> 0.08, chance 0.1).
    expect(fedavg).toBeLessThan(clean.fedavg - 0.2);
    for (const [label, strategy, params] of ROBUST) {
      const hostile = await accuracy(`${label}-hostile`, strategy, params, 10, 2);
      expect(Math.abs(hostile - clean[label])).toBeLessThanOrEqual(0.02);
      // ... and learns: well above chance (0.1).
      expect(hostile).toBeGreaterThan(0.8);
    }
  }, 900_000);

  it('an update-norm bound refuses the scaled update, records it on each round and shows it in GET /tasks/{id}/rounds', async () => {
    // The hostile sites are still up. First learn the update norms of round 1: a bound nothing meets names each.
    const probe = await platform.fetch('POST', '/tasks', {
      user_id: '1', use_case: 'digits', model_name: model.name, model_version: model.version, num_global_iterations: 1, run_name: 'norms',
      experiment_name: 'Default', min_fit_clients: 10, local_epochs: 2, batch_size: 32, learning_rate: 0.1, max_update_norm: 1e-9,
    });
    const failed = await platform.taskWhen(probe.body.id, ['success', 'failed', 'cancelled'], 120_000);
    expect(failed.status).toBe('failed');
    const norms = new Map<string, number>();
    for (const m of (failed.reason as string).matchAll(/(sim-\d+): L2 norm of the update \(difference to the global weights\) is ([0-9.e+-]+)/g)) norms.set(m[1], Number(m[2]));
    expect(norms.size).toBe(10);
    const honest = Math.max(...[...norms].filter(([n]) => n !== 'sim-2').map(([, v]) => v));
    // sim-2 sends ten times its change: far beyond every honest site's.
    expect(norms.get('sim-2')!).toBeGreaterThan(5 * honest);

    const created = await platform.fetch('POST', '/tasks', {
      user_id: '1', use_case: 'digits', model_name: model.name, model_version: model.version, num_global_iterations: 3, run_name: 'bounded',
      experiment_name: 'Default', min_fit_clients: 9, local_epochs: 2, batch_size: 32, learning_rate: 0.1, max_update_norm: 2 * honest,
    });
    const task = await platform.taskWhen(created.body.id, ['success', 'failed', 'cancelled'], 120_000);
    expect(task.reason).toBeNull();
    expect(task.status).toBe('success');
    const rounds = (await platform.fetch('GET', `/tasks/${task.id}/rounds`)).body as { participants: number; rejected?: { node: string; reason: string }[] }[];
    expect(rounds).toHaveLength(3);
    for (const r of rounds) {
      expect(r.participants).toBe(9);
      expect(r.rejected).toEqual([{ node: 'sim-2', reason: expect.stringMatching(/^L2 norm of the update \(difference to the global weights\) is [0-9.e+-]+, beyond the bound /) }]);
    }
    const refused = await platform.query<{ round: number; status: string }>(
      `SELECT round, status FROM coordinator.round_participants WHERE task_id = $1 AND phase = 'fit' AND node_name = 'sim-2' ORDER BY round`,
      [task.id],
    );
    expect(refused).toEqual([1, 2, 3].map((round) => ({ round, status: 'rejected' })));
    await stopSimulator();
  }, 300_000);

  it('Dirichlet(0.3) shards: FedAdam reaches a better accuracy than FedAvg in the same 5 rounds', async () => {
    await simulate({ SIM_PARTITION: 'dirichlet:0.3' });
    const fedavg = await accuracy('noniid-fedavg', 'FedAvg', {}, 5, 5);
    const fedadam = await accuracy('noniid-fedadam', 'FedAdam', { eta: 0.05 }, 5, 5);
    // Reported, not asserted against FedAvg: at mu 0.1 the proximal term slowed training here (README).
    await accuracy('noniid-fedprox', 'FedProx', { proximal_mu: 0.1 }, 5, 5);
    expect(fedadam).toBeGreaterThan(fedavg);
    await stopSimulator();
  }, 600_000);
});
