import { Platform } from './support/platform';

/**
 * A site that stalls mid-round (SIGSTOP) is not waited for beyond the round
 * deadline: the round is run again, and if the site is still missing after
 * the retries, the task fails naming it. Nothing is left running.
 */
describe('a site that stalls mid-round', () => {
  const platform = new Platform();
  let model: { name: string; version: number };

  beforeAll(async () => {
    await platform.start({ sites: 3, coordinators: 1, coordinatorEnv: { ROUND_RETRIES: '1' } });
    model = JSON.parse(await platform.cli('models', 'publish', 'iris', '--json'));
  }, 120_000);

  afterAll(() => platform.stop(), 60_000);

  const query = <T>(sql: string, params: unknown[] = []) => platform.query<T>(sql, params);

  async function startTask(rounds: number, roundTimeoutS: number): Promise<number> {
    const created = await platform.fetch('POST', '/tasks', {
      user_id: '1', use_case: 'iris', model_name: model.name, model_version: model.version, num_global_iterations: rounds,
      run_name: 'stall', experiment_name: 'Default', min_fit_clients: 3, round_timeout_s: roundTimeoutS,
    });
    expect(created.status).toBe(200);
    const id = created.body.id;
    await platform.until(`task ${id} has completed 2 rounds`, async () => (await platform.fetch('GET', `/tasks/${id}`)).body.current_round >= 2);
    return id;
  }

  const missing = (id: number) =>
    query<{ round: number }>(`SELECT round FROM coordinator.round_participants WHERE task_id = $1 AND node_name = 'site-3' AND status = 'missing'`, [id]);

  it('fails the task, naming the site, when it is still missing after the retries', async () => {
    const id = await startTask(300, 2);
    platform.signal('site-3', 'SIGSTOP');
    try {
      const task = await platform.taskWhen(id);
      expect(task.status).toBe('failed');
      expect(task.reason).toMatch(/^round \d+: 2 usable update\(s\) from 3 worker\(s\), min_fit_clients is 3; no answer within 2 s from site-3 \(after 1 retry of the round\)$/);
      const [run] = await query<{ state: string; outcome: string }>(`SELECT state, outcome FROM coordinator.task_runs WHERE task_id = $1`, [id]);
      expect(run).toEqual({ state: 'finished', outcome: 'failed' });
      const failedRound = Number(/^round (\d+)/.exec(task.reason)![1]);
      // (It may also have missed the evaluation of the round before, which goes on without it.)
      expect((await missing(id)).map((r) => r.round)).toContain(failedRound);
      expect((await query<{ status: string }>(`SELECT status FROM coordinator.rounds WHERE task_id = $1 AND round = $2`, [id, failedRound]))[0].status).toBe('failed');
    } finally {
      platform.signal('site-3', 'SIGCONT');
    }
  });
});
