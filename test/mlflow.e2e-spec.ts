import { startFakeMlflow, FakeMlflow } from '../libs/registry/test/fake-mlflow-server';
import { Platform } from './support/platform';

/**
 * The predecessor's flow with MLflow as registry and tracker: publish a model
 * to MLflow, start a task with its name and version, watch the run, find the
 * trained model registered there. MLflow is a test double speaking MLflow
 * 2.x's REST API over HTTP; the apps are the real processes. Edge workers get
 * no MLflow settings at all: the coordinator passes them the model.
 */
describe('MLflow as model registry and experiment tracker', () => {
  const platform = new Platform();
  let mlflow: FakeMlflow;
  let model: { name: string; version: number };

  beforeAll(async () => {
    mlflow = await startFakeMlflow();
    platform.registryEnv = { REGISTRY_BACKEND: 'mlflow', MLFLOW_URL: mlflow.url };
    await platform.start({
      sites: 3,
      coordinators: 1,
      coordinatorEnv: { REGISTRATION_ATTEMPTS: '2', REGISTRATION_RETRY_S: '0.2', MLFLOW_HTTP_REQUEST_MAX_RETRIES: '1' },
    });
    model = JSON.parse(await platform.cli('models', 'publish', 'iris', '--json'));
  }, 120_000);

  let mlflowClosed = false;
  afterAll(async () => {
    await platform.stop();
    if (!mlflowClosed) await mlflow.close();
  }, 60_000);

  const runsNamed = (name: string) => [...mlflow.state.runs.values()].filter((r) => r.info.run_name === name);

  it('publishes the model package as run artifacts and a model version tagged with its use case', async () => {
    expect(model).toEqual({ name: 'iris', version: 1 });
    expect(JSON.parse(await platform.cli('models', 'publish', 'iris', '--json'))).toEqual(model);
    const v = mlflow.state.models.get('iris')!.versions.find((x) => x.version === 1)!;
    expect(v.source).toMatch(/^mlflow-artifacts:\//);
    expect(v.tags.get('use_case')).toBe('iris');
    const files = [...mlflow.state.artifacts.keys()].filter((p) => v.source.endsWith(p.split('/').slice(0, -1).join('/')));
    expect(files.map((f) => f.split('/').pop()).sort()).toEqual(['inference.onnx', 'manifest.json', 'train_step.onnx', 'weights.safetensors']);
    const listed = (await platform.fetch('GET', '/models')).body;
    expect(listed).toEqual([expect.objectContaining({ name: 'iris', versions: [expect.objectContaining({ version: 1, source: v.source })] })]);
  });

  it("runs the predecessor's task and tracks it in MLflow: parent run, params, metrics per round, a child run per worker", async () => {
    const created = await platform.fetch('POST', '/tasks', {
      user_id: '1', use_case: 'iris', model_name: 'iris', model_version: 1, num_global_iterations: 3, run_name: 'test_run', experiment_name: 'Default',
    });
    expect(created.status).toBe(200);
    await platform.until('the parent run test_run is FINISHED', async () => runsNamed('test_run')[0]?.info.status === 'FINISHED');
    const task = (await platform.fetch('GET', `/tasks/${created.body.id}`)).body;
    expect(task).toMatchObject({ status: 'success', result_model_name: 'trained_iris', result_model_version: 1 });

    const [parent] = runsNamed('test_run');
    expect(parent.info.experiment_id).toBe('0'); // MLflow's Default experiment
    expect(Object.fromEntries(parent.params)).toMatchObject({ num_global_iterations: '3', strategy: 'fedavg', model_name: 'iris', model_version: '1' });
    const accuracy = parent.metrics.filter((m) => m.key === 'eval_accuracy');
    expect(accuracy.map((m) => m.step)).toEqual([1, 2, 3]);
    expect(accuracy[2].value).toBeCloseTo(task.metrics.eval_accuracy, 6);
    for (const site of ['site-1', 'site-2', 'site-3']) {
      const [child] = runsNamed(site);
      expect(child.tags.get('mlflow.parentRunId')).toBe(parent.info.run_id);
      expect(child.info.status).toBe('FINISHED');
      expect(child.metrics.filter((m) => m.key === 'train_loss').map((m) => m.step)).toEqual([1, 2, 3]);
    }

    // Registered once, as a new version of trained_<model_name>, its artifacts under the parent run.
    const trained = mlflow.state.models.get('trained_iris')!;
    expect(trained.versions.map((x) => x.version)).toEqual([1]);
    const [v] = trained.versions;
    expect(v.run_id).toBe(parent.info.run_id);
    expect(Object.fromEntries(v.tags)).toMatchObject({ use_case: 'iris', trained: 'true', task_id: String(task.id), source_model: 'iris', source_version: '1' });
    expect(Number(v.tags.get('eval_accuracy'))).toBe(task.metrics.eval_accuracy);
    const one = await platform.fetch('GET', '/models/trained_iris/versions/1');
    expect(one.body).toMatchObject({ name: 'trained_iris', version: 1, run_id: parent.info.run_id });
  });

  it('refuses a model MLflow does not have, storing nothing', async () => {
    const before = (await platform.fetch('GET', '/tasks')).body.length;
    const res = await platform.fetch('POST', '/tasks', {
      user_id: '1', use_case: 'iris', model_name: 'iris', model_version: 7, num_global_iterations: 1, run_name: 'r', experiment_name: 'Default',
    });
    expect(res.status).toBe(404);
    expect(res.body.message).toContain("model 'iris' version 7");
    expect((await platform.fetch('GET', '/tasks')).body.length).toBe(before);
  });

  it('fails a task whose model cannot be registered, with a reason, keeping the weights in the checkpoint', async () => {
    mlflow.failNext(1000, 503, 'model-versions/create');
    const created = await platform.fetch('POST', '/tasks', {
      user_id: '1', use_case: 'iris', model_name: 'iris', model_version: 1, num_global_iterations: 2, run_name: 'outage_run', experiment_name: 'Default',
    });
    const task = await platform.taskWhen(created.body.id);
    expect(task.status).toBe('failed');
    expect(task.reason).toMatch(/^could not register the trained model 'trained_iris' after 2 attempts \(.*503.*\); the trained weights are kept in the checkpoint of round 2$/);
    expect(runsNamed('outage_run')[0].info.status).toBe('FAILED');
  });

  it('answers 502 naming the MLflow server when it is unreachable, and stores nothing', async () => {
    const before = (await platform.fetch('GET', '/tasks')).body.length;
    await mlflow.close();
    mlflowClosed = true;
    const res = await platform.fetch('POST', '/tasks', {
      user_id: '1', use_case: 'iris', model_name: 'iris', model_version: 1, num_global_iterations: 1, run_name: 'r', experiment_name: 'Default',
    });
    expect(res.status).toBe(502);
    expect(res.body.message).toContain(mlflow.url);
    expect((await platform.fetch('GET', '/models')).status).toBe(502);
    expect((await platform.fetch('GET', '/tasks')).body.length).toBe(before);
  });
});
