import { join } from 'node:path';
import { bundledDataDir } from '@fl/datasets';
import { Platform } from './support/platform';

/**
 * Simulation mode: twenty virtual edge workers in one simulator process, each
 * with its own queue, name and shard of iris, against a real gateway and
 * coordinator over the real broker. The virtual workers share the
 * simulator's broker user, so the coordinator trusts payload names
 * (SITE_AUTH=none).
 */
describe('simulation mode', () => {
  const platform = new Platform();
  const K = 20;
  const names = Array.from({ length: K }, (_, i) => `vsite-${i + 1}`);
  let model: { name: string; version: number };
  const simulatorLog = () => platform.logOf('simulator');
  const online = async () => ((await platform.fetch('GET', '/nodes')).body as { name: string; status: string }[]).filter((n) => n.status === 'online').map((n) => n.name);

  beforeAll(async () => {
    await platform.provision();
    await platform.startGateway();
    await platform.startCoordinators(1, { SITE_AUTH: 'none', WORKER_WAIT_S: '3' });
    await platform.startSimulator('simulator', K, {
      SIM_NODE_PREFIX: 'vsite',
      SIM_PARTITION: 'iid',
      USE_CASES: 'iris',
      DATA_PATH: join(bundledDataDir(), 'iris.csv'),
    });
    model = JSON.parse(await platform.cli('models', 'publish', 'iris', '--json'));
  }, 120_000);

  afterAll(async () => {
    await platform.stop();
  }, 60_000);

  it('registers each virtual worker as a site of its own, with its own shard', async () => {
    const nodes = (await platform.fetch('GET', '/nodes')).body as { name: string; use_cases: string[] }[];
    expect(nodes.map((n) => n.name).sort()).toEqual([...names].sort());
    for (const n of nodes) expect(n.use_cases).toEqual(['iris']);
    const rows = await platform.query<{ train: number; test: number }>(`SELECT (examples->'iris'->>'train')::int AS train, (examples->'iris'->>'test')::int AS test FROM coordinator.nodes`);
    // iris dealt iid: 7 or 8 rows each, 150 in all, every worker holding some back.
    expect(rows.reduce((s, r) => s + r.train + r.test, 0)).toBe(150);
    for (const r of rows) expect(r.test).toBeGreaterThan(0);
    expect(simulatorLog()).toMatch(/20 virtual edge workers \(vsite-1 \.\. vsite-20\) up in/);
  });

  it('runs a task whose rounds each aggregate the updates of distinct virtual workers', async () => {
    const rounds = 4;
    const created = await platform.fetch('POST', '/tasks', {
      user_id: '1', use_case: 'iris', model_name: model.name, model_version: model.version, num_global_iterations: rounds,
      run_name: 'simulation', experiment_name: 'Default', min_fit_clients: 10, fraction_fit: 0.5,
    });
    expect(created.status).toBe(200);
    const task = await platform.taskWhen(created.body.id, ['success', 'failed', 'cancelled'], 120_000);
    expect(task.reason).toBeNull();
    expect(task.status).toBe('success');
    // Measured here: 0.81 on the 47 held-out rows (20 shards of 7 or 8 rows, 4 rounds); chance is 0.33.
    expect(task.metrics.eval_accuracy).toBeGreaterThanOrEqual(0.7);

    const [{ held_out }] = await platform.query<{ held_out: number }>(`SELECT sum((examples->'iris'->>'test')::int)::int AS held_out FROM coordinator.nodes`);
    const figures = (await platform.fetch('GET', `/tasks/${task.id}/rounds`)).body as { round: number; participants: number; eval_examples: number }[];
    expect(figures.map((r) => r.round)).toEqual([1, 2, 3, 4]);
    for (const r of figures) {
      expect(r.participants).toBe(10);
      // Evaluated on every virtual worker's held-out rows.
      expect(r.eval_examples).toBe(held_out);
    }
    const answers = await platform.query<{ round: number; phase: string; node_name: string; status: string }>(
      `SELECT round, phase, node_name, status FROM coordinator.round_participants WHERE task_id = $1 ORDER BY round, phase, node_name`,
      [task.id],
    );
    const chosen = new Set<string>();
    for (let round = 1; round <= rounds; round++) {
      const fit = answers.filter((a) => a.round === round && a.phase === 'fit');
      expect(fit.map((a) => a.status)).toEqual(Array(10).fill('received'));
      expect(new Set(fit.map((a) => a.node_name)).size).toBe(10);
      for (const a of fit) {
        expect(names).toContain(a.node_name);
        chosen.add(a.node_name);
      }
      const evaluate = answers.filter((a) => a.round === round && a.phase === 'evaluate');
      expect(evaluate.map((a) => a.node_name).sort()).toEqual([...names].sort());
      expect(evaluate.every((a) => a.status === 'received')).toBe(true);
    }
    // Sampled anew each round (fraction_fit 0.5): more than one round's ten took part.
    expect(chosen.size).toBeGreaterThan(10);
  });

  it("samples evaluators as Flower does (fraction_evaluate, min_evaluate_clients) and waits for min_available_clients", async () => {
    const body = {
      user_id: '1', use_case: 'iris', model_name: model.name, model_version: model.version, num_global_iterations: 2,
      run_name: 'evaluation-sampling', experiment_name: 'Default', min_fit_clients: 5,
    };
    const created = await platform.fetch('POST', '/tasks', { ...body, strategy: 'FedAvg', strategy_params: { fraction_evaluate: 0.25, min_evaluate_clients: 6, min_available_clients: 20 } });
    expect(created.body.strategy_params).toMatchObject({ fraction_evaluate: 0.25, min_evaluate_clients: 6, min_available_clients: 20 });
    const task = await platform.taskWhen(created.body.id, ['success', 'failed', 'cancelled'], 120_000);
    expect(task.reason).toBeNull();
    const evaluated = await platform.query<{ round: number; n: number }>(
      `SELECT round, count(*)::int AS n FROM coordinator.round_participants WHERE task_id = $1 AND phase = 'evaluate' AND status = 'received' GROUP BY round ORDER BY round`,
      [task.id],
    );
    // max(min_evaluate_clients 6, 0.25 x 20 = 5) of the 20.
    expect(evaluated).toEqual([{ round: 1, n: 6 }, { round: 2, n: 6 }]);

    const waiting = await platform.fetch('POST', '/tasks', { ...body, strategy: 'FedAvg', strategy_params: { min_available_clients: 21 } });
    const failed = await platform.taskWhen(waiting.body.id, ['success', 'failed', 'cancelled'], 60_000);
    expect(failed.status).toBe('failed');
    expect(failed.reason).toMatch(/^round 1: 20 edge worker\(s\) serving use case 'iris' are online \(.*\) but min_available_clients is 21; start more workers or lower min_available_clients$/);
  });

  it('stops on SIGTERM as edge workers stop: every virtual worker says goodbye', async () => {
    expect(await platform.kill('simulator', 'SIGTERM')).toBe('SIGTERM');
    await platform.until('no virtual worker is online', async () => (await online()).length === 0, 15_000);
    const statuses = await platform.query<{ status: string }>(`SELECT status FROM coordinator.nodes`);
    expect(statuses.map((s) => s.status)).toEqual(Array(K).fill('offline'));
  });
});
