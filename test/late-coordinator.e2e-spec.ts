import { Platform } from './support/platform';

/**
 * Coordinators come and go without losing work: edge workers and a task that
 * come before any coordinator (their registration and submission find no
 * coordinator queue on the broker) are picked up once one starts, and a task
 * whose coordinator is stopped mid-run is resumed by another from its last
 * checkpoint.
 */
describe('coordinators that start late and stop mid-task', () => {
  const platform = new Platform();

  beforeAll(async () => {
    await platform.provision();
    await platform.startGateway({ TASK_RESUBMIT_S: '1' });
    await platform.startSites(2);
  }, 120_000);

  afterAll(() => platform.stop(), 60_000);

  it('learns of the workers, receives the pending task and runs it', async () => {
    const model = JSON.parse(await platform.cli('models', 'publish', 'iris', '--json'));
    const created = await platform.fetch('POST', '/tasks', {
      user_id: '1', use_case: 'iris', model_name: model.name, model_version: model.version, num_global_iterations: 2, run_name: 'late', experiment_name: 'Default',
    });
    expect(created.status).toBe(200);
    // Enrolled (they have their broker users) but unheard of: no coordinator was there to hear them.
    expect((await platform.fetch('GET', '/nodes')).body.map((n: { name: string; status: string }) => [n.name, n.status])).toEqual([
      ['site-1', 'enrolled'],
      ['site-2', 'enrolled'],
    ]);
    expect((await platform.fetch('GET', `/tasks/${created.body.id}`)).body.status).toBe('pending');

    await platform.startCoordinators(1);
    await platform.sitesOnline(2);
    const task = await platform.taskWhen(created.body.id);
    expect(task).toMatchObject({ status: 'success', current_round: 2, reason: null });
  });

  it('resumes a task from its last checkpoint on another coordinator when its own stops', async () => {
    // Enough rounds that the task is still running when its coordinator is stopped.
    const rounds = 300;
    const created = await platform.fetch('POST', '/tasks', {
      user_id: '1', use_case: 'iris', model_name: 'iris', model_version: 1, num_global_iterations: rounds, run_name: 'handover', experiment_name: 'Default',
    });
    const id = created.body.id;
    await platform.until(`task ${id} has completed 3 rounds`, async () => (await platform.fetch('GET', `/tasks/${id}`)).body.current_round >= 3);
    // A graceful stop hands the task back instead of failing it.
    expect(await platform.kill('coordinator-1', 'SIGTERM')).toBe('SIGTERM');
    expect((await platform.fetch('GET', `/tasks/${id}`)).body.status).toBe('running');
    await platform.startCoordinators(1, {}, 2);
    const task = await platform.taskWhen(id);
    expect(task).toMatchObject({ status: 'success', current_round: rounds, reason: null, result_model_name: 'trained_iris' });
    const stored = (await platform.fetch('GET', `/tasks/${id}/rounds`)).body.map((r: { round: number }) => r.round);
    expect(stored).toEqual(Array.from({ length: rounds }, (_, i) => i + 1));
    const versions = (await platform.fetch('GET', '/models/trained_iris/versions')).body.filter((v: any) => v.tags.task_id === String(id));
    expect(versions).toHaveLength(1);
  });
});
