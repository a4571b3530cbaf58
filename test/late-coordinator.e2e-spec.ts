import { Platform } from './support/platform';

/**
 * Nothing waits forever on a message that went nowhere: edge workers and a
 * task that come before any coordinator (their registration and submission
 * find no coordinator queue on the broker) are picked up once one starts.
 */
describe('a coordinator that starts after the workers and the task', () => {
  const platform = new Platform();

  beforeAll(async () => {
    await platform.provision();
    await platform.startGateway({ TASK_RESUBMIT_S: '1' });
    platform.startSites(2);
  }, 120_000);

  afterAll(() => platform.stop(), 60_000);

  it('learns of the workers, receives the pending task and runs it', async () => {
    const model = JSON.parse(await platform.cli('models', 'publish', 'iris', '--json'));
    const created = await platform.fetch('POST', '/tasks', {
      user_id: '1', use_case: 'iris', model_name: model.name, model_version: model.version, num_global_iterations: 2, run_name: 'late', experiment_name: 'Default',
    });
    expect(created.status).toBe(200);
    expect((await platform.fetch('GET', '/nodes')).body).toEqual([]);
    expect((await platform.fetch('GET', `/tasks/${created.body.id}`)).body.status).toBe('pending');

    platform.startCoordinators(1);
    await platform.sitesOnline(2);
    let task: any;
    await platform.until('the task has ended', async () => {
      task = (await platform.fetch('GET', `/tasks/${created.body.id}`)).body;
      return ['success', 'failed', 'cancelled'].includes(task.status);
    });
    expect(task).toMatchObject({ status: 'success', current_round: 2, reason: null });
  });
});
