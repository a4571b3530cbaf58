import { Platform } from './support/platform';

/**
 * SIGTERM mid-task, as an orchestrator sends it: each app stops by itself
 * (no SIGKILL), hands back or finishes what it holds, and the task still
 * succeeds. (A coordinator's hand-over is in late-coordinator.e2e-spec.ts.)
 */
describe('graceful shutdown mid-task', () => {
  const platform = new Platform();
  let model: { name: string; version: number };

  beforeAll(async () => {
    await platform.start({ sites: 3, coordinators: 1 });
    model = JSON.parse(await platform.cli('models', 'publish', 'iris', '--json'));
  }, 120_000);

  afterAll(() => platform.stop(), 60_000);

  async function startTask(rounds: number): Promise<number> {
    const created = await platform.fetch('POST', '/tasks', {
      user_id: '1', use_case: 'iris', model_name: model.name, model_version: model.version, num_global_iterations: rounds,
      run_name: 'shutdown', experiment_name: 'Default', round_timeout_s: 600,
    });
    expect(created.status).toBe(200);
    return created.body.id;
  }

  it('an edge worker stopped mid-task sends its last answer, says goodbye, and no round waits for it', async () => {
    const rounds = 300;
    const id = await startTask(rounds);
    await platform.until(`task ${id} has completed 2 rounds`, async () => (await platform.fetch('GET', `/tasks/${id}`)).body.current_round >= 2);
    expect(await platform.kill('site-3', 'SIGTERM')).toBe('SIGTERM');
    // With a 600 s round deadline, the task can only finish in time if the
    // coordinator stopped waiting for the site as soon as it left.
    const task = await platform.taskWhen(id);
    expect(task).toMatchObject({ status: 'success', current_round: rounds });
    const figures = (await platform.fetch('GET', `/tasks/${id}/rounds`)).body;
    expect(figures).toHaveLength(rounds);
    expect(figures[rounds - 1].participants).toBe(2);
    const nodes = (await platform.fetch('GET', '/nodes')).body;
    expect(nodes.find((n: any) => n.name === 'site-3').status).toBe('offline');
  });

  it('a gateway stopped mid-task loses no event: its successor shows the task succeeded', async () => {
    const rounds = 200;
    const id = await startTask(rounds);
    await platform.until(`task ${id} is running`, async () => (await platform.fetch('GET', `/tasks/${id}`)).body.status === 'running');
    expect(await platform.kill('gateway', 'SIGTERM')).toBe('SIGTERM');
    // Events published meanwhile wait in the gateway's durable queue.
    await platform.startGateway();
    const task = await platform.taskWhen(id);
    expect(task).toMatchObject({ status: 'success', current_round: rounds });
    expect((await platform.fetch('GET', `/tasks/${id}/rounds`)).body).toHaveLength(rounds);
  });
});
