import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { InferenceSession, Tensor } from 'onnxruntime-node';
import { bundledDataDir, IRIS, readCsvFile, toLabeledData } from '@fl/datasets';
import { Platform } from './support/platform';

/**
 * The whole system as deployed: a gateway, two coordinators (so that every
 * task is also a test of the lease: exactly one of them may run it) and three
 * edge workers as separate processes on real RabbitMQ and PostgreSQL, each
 * worker holding a disjoint third of iris, driven through the REST API only.
 */
describe('federated iris over RabbitMQ and PostgreSQL', () => {
  const platform = new Platform();
  let model: { name: string; version: number };

  beforeAll(async () => {
    await platform.start({ sites: 3, coordinators: 2, coordinatorEnv: { WORKER_WAIT_S: '2' } });
    model = JSON.parse(await platform.cli('models', 'publish', 'iris', '--json'));
  }, 120_000);

  afterAll(async () => {
    // Every app stops on SIGTERM by itself (Nest re-raises the signal after its
    // shutdown hooks), not by the SIGKILL sent after the grace period.
    const ended = await platform.stop();
    expect(ended).toEqual({ gateway: 'SIGTERM', 'coordinator-1': 'SIGTERM', 'coordinator-2': 'SIGTERM', 'site-1': 'SIGTERM', 'site-2': 'SIGTERM', 'site-3': 'SIGTERM' });
  }, 60_000);

  const query = <T>(sql: string, params: unknown[] = []) => platform.query<T>(sql, params);
  const waitForStatus = (id: number, statuses: string[], timeoutMs?: number) => platform.taskWhen(id, statuses, timeoutMs);

  it('answers the predecessor ping', async () => {
    expect(await platform.fetch('GET', '/')).toMatchObject({ status: 200, body: { message: 'Pong' } });
  });

  it('publishing the same model twice gives the same version', async () => {
    expect(model).toEqual({ name: 'iris', version: 1 });
    expect(JSON.parse(await platform.cli('models', 'publish', 'iris', '--json'))).toEqual(model);
    const models = (await platform.fetch('GET', '/models')).body;
    expect(models).toEqual([expect.objectContaining({ name: 'iris', latest_version: 1, versions: [expect.objectContaining({ version: 1, tags: expect.objectContaining({ use_case: 'iris' }) })] })]);
    const v1 = await platform.fetch('GET', '/models/iris/versions/1');
    expect(v1.status).toBe(200);
    expect(v1.body).toMatchObject({ name: 'iris', version: 1, tags: { use_case: 'iris' } });
    expect((await platform.fetch('GET', '/models/iris/versions/99')).status).toBe(404);
    expect((await platform.fetch('GET', '/models/iris/versions/x')).status).toBe(400);
  });

  it('trains a task submitted with exactly the predecessor body, stores every round and registers one model', async () => {
    const body = {
      user_id: '1',
      use_case: 'iris',
      model_name: model.name,
      model_version: model.version,
      num_global_iterations: 3,
      run_name: 'test_run',
      experiment_name: 'Default',
    };
    const created = await platform.fetch('POST', '/tasks/', body);
    expect(created.status).toBe(200);
    expect(created.body).toMatchObject({ ...body, status: 'pending', strategy: 'fedavg' });
    expect(Number.isInteger(created.body.id)).toBe(true);
    expect(new Date(created.body.created_at).getTime()).not.toBeNaN();

    const task = await waitForStatus(created.body.id, ['success', 'failed', 'cancelled']);
    expect(task.reason).toBeNull();
    expect(task.status).toBe('success');
    expect(task.metrics.eval_accuracy).toBeGreaterThanOrEqual(0.9);
    expect(task.result_model_name).toBe('trained_iris');

    const rounds = (await platform.fetch('GET', `/tasks/${task.id}/rounds`)).body;
    expect(rounds.map((r: any) => r.round)).toEqual([1, 2, 3]);
    for (const r of rounds) {
      expect(r.participants).toBe(3);
      expect(r.examples).toBe(120);
      expect(r.eval_examples).toBe(30);
      expect(r.train_loss).toBeGreaterThan(0);
      expect(r.eval_loss).toBeGreaterThan(0);
      expect(r.eval_accuracy).toBeGreaterThan(0);
      expect(new Date(r.finished_at).getTime()).toBeGreaterThanOrEqual(new Date(r.started_at).getTime());
    }
    expect(rounds[2].eval_accuracy).toBe(task.metrics.eval_accuracy);
    // One instruction a round per site: the evaluations of rounds 1 and 2 travelled with the fits of rounds 2 and 3.
    for (const site of ['site-1', 'site-2', 'site-3']) {
      const lines = platform.jsonLogLines(site).filter((l) => l.task_id === task.id);
      expect(lines.filter((l) => String(l.msg).includes('training on')).map((l) => l.round)).toEqual([1, 2, 3]);
      expect(lines.filter((l) => String(l.msg).includes('held-out examples before training')).map((l) => String(l.msg))).toEqual([
        "round 2: evaluated round 1's weights on 10 held-out examples before training",
        "round 3: evaluated round 2's weights on 10 held-out examples before training",
      ]);
    }
    // The coordinator stored a checkpoint for every round, and the global weights moved between rounds.
    const checkpoints = await query<{ round: number; sha256: string }>(`SELECT round, sha256 FROM coordinator.checkpoints WHERE task_id = $1 ORDER BY round`, [task.id]);
    expect(checkpoints.map((c) => c.round)).toEqual([1, 2, 3]);
    expect(new Set(checkpoints.map((c) => c.sha256)).size).toBe(3);

    // One coordinator ran the task; the other never started it.
    const runs = await query<{ owner: string; outcome: string }>(`SELECT owner, outcome FROM coordinator.task_runs WHERE task_id = $1`, [task.id]);
    expect(runs).toEqual([{ owner: expect.stringMatching(/^e2e-coordinator-[12]$/), outcome: 'success' }]);
    const started = await query<{ payload: { coordinator: string } }>(`SELECT payload FROM gateway.task_events WHERE task_id = $1 AND type = 'task.started'`, [task.id]);
    expect(started.map((e) => e.payload.coordinator)).toEqual([runs[0].owner]);

    const versions = await query<{ version: number; tags: Record<string, string>; run_id: string }>(`SELECT version, tags, run_id FROM registry.model_versions WHERE name = 'trained_iris'`);
    expect(versions).toHaveLength(1);
    expect(versions[0].version).toBe(task.result_model_version);
    expect(versions[0].tags).toMatchObject({ use_case: 'iris', trained: 'true', task_id: String(task.id) });
    expect(Number(versions[0].tags.eval_accuracy)).toBe(task.metrics.eval_accuracy);

    // The run was tracked as the predecessor's users expect: a parent run named
    // after run_name with the settings as params and a metric per round, one
    // finished child run per worker, and the model's artifacts under the parent.
    const [parent] = await query<{ id: string; status: string; params: Record<string, string>; experiment_name: string }>(
      `SELECT id, status, params, experiment_name FROM registry.runs WHERE run_name = 'test_run' AND parent_run_id IS NULL AND tags->>'task_id' = $1`,
      [String(task.id)],
    );
    expect(parent).toMatchObject({ status: 'FINISHED', experiment_name: 'Default' });
    expect(parent.params).toMatchObject({ num_global_iterations: '3', strategy: 'fedavg', model_name: 'iris' });
    const steps = await query<{ step: number; value: number }>(`SELECT step, value FROM registry.run_metrics WHERE run_id = $1 AND key = 'eval_accuracy' ORDER BY step`, [parent.id]);
    expect(steps.map((m) => m.step)).toEqual([1, 2, 3]);
    expect(steps[2].value).toBeCloseTo(task.metrics.eval_accuracy, 6);
    const children = await query<{ run_name: string; status: string }>(`SELECT run_name, status FROM registry.runs WHERE parent_run_id = $1 ORDER BY run_name`, [parent.id]);
    expect(children).toEqual(['site-1', 'site-2', 'site-3'].map((run_name) => ({ run_name, status: 'FINISHED' })));
    // Each round's figures of every site, logged with the task's in one call.
    const childSteps = await query<{ run_name: string; steps: number[] }>(
      `SELECT r.run_name, array_agg(m.step ORDER BY m.step) AS steps FROM registry.runs r
       JOIN registry.run_metrics m ON m.run_id = r.id AND m.key = 'train_loss' WHERE r.parent_run_id = $1 GROUP BY r.run_name ORDER BY r.run_name`,
      [parent.id],
    );
    expect(childSteps).toEqual(['site-1', 'site-2', 'site-3'].map((run_name) => ({ run_name, steps: [1, 2, 3] })));
    expect(versions[0].run_id).toBe(parent.id);

    // Load the registered weights independently of the project's codecs and
    // run the registered inference graph on all 150 rows.
    const dir = join(platform.artifactDir, 'trained_iris', String(task.result_model_version));
    const file = readFileSync(join(dir, 'weights.safetensors'));
    const headerLen = Number(file.readBigUInt64LE(0));
    const header = JSON.parse(file.subarray(8, 8 + headerLen).toString('utf8'));
    const feeds: Record<string, Tensor> = {};
    for (const [name, t] of Object.entries<any>(header)) {
      if (name === '__metadata__') continue;
      expect(t.dtype).toBe('F32');
      const [begin, end] = t.data_offsets;
      const bytes = file.subarray(8 + headerLen + begin, 8 + headerLen + end);
      feeds[name] = new Tensor('float32', new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length)), t.shape);
    }
    const iris = toLabeledData(readCsvFile(join(bundledDataDir(), 'iris.csv')), IRIS);
    feeds.x = new Tensor('float32', iris.x, [iris.n, 4]);
    const session = await InferenceSession.create(readFileSync(join(dir, 'inference.onnx')));
    const out = await session.run(feeds);
    const probs = out.probabilities.data as Float32Array;
    let correct = 0;
    for (let i = 0; i < iris.n; i++) {
      const row = probs.subarray(i * 3, i * 3 + 3);
      const predicted = row.indexOf(Math.max(...row));
      if (predicted === iris.labels[i]) correct++;
    }
    await session.release();
    expect(correct / iris.n).toBeGreaterThanOrEqual(0.9);
  });

  it('reports health and Prometheus metrics on every app', async () => {
    const get = async (url: string) => {
      const res = await fetch(url);
      return { status: res.status, text: await res.text() };
    };
    const metric = (text: string, line: RegExp) => {
      const m = text.split('\n').find((l) => line.test(l));
      return m === undefined ? undefined : Number(m.split(' ').pop());
    };
    const ready = await platform.fetch('GET', '/health/ready');
    expect(ready.status).toBe(200);
    expect(ready.body.info).toMatchObject({ broker: { status: 'up' }, database: { status: 'up' }, registry: { status: 'up', backend: 'local' } });
    const gatewayMetrics = (await get(`${platform.gatewayUrl}/metrics`)).text;
    expect(metric(gatewayMetrics, /^fl_tasks\{status="success",app="gateway"\}/)).toBeGreaterThanOrEqual(1);
    expect(metric(gatewayMetrics, /^fl_bus_messages_received_total\{app="gateway"\}/)).toBeGreaterThan(0);

    // The coordinator that ran the task counted its rounds and the workers' answers.
    const counts = await Promise.all(['coordinator-1', 'coordinator-2'].map(async (c) => {
      const port = platform.healthPorts[c];
      expect((await get(`http://127.0.0.1:${port}/health/ready`)).status).toBe(200);
      const text = (await get(`http://127.0.0.1:${port}/metrics`)).text;
      expect(metric(text, /^fl_connected_workers\{use_case="iris",app="coordinator"\}/)).toBe(3);
      return {
        rounds: metric(text, /^fl_rounds_total\{outcome="completed",app="coordinator"\}/) ?? 0,
        received: metric(text, /^fl_updates_total\{phase="fit",result="received",app="coordinator"\}/) ?? 0,
        durations: metric(text, /^fl_round_duration_seconds_count\{app="coordinator"\}/) ?? 0,
      };
    }));
    const total = counts.reduce((a, c) => ({ rounds: a.rounds + c.rounds, received: a.received + c.received, durations: a.durations + c.durations }));
    expect(total.rounds).toBeGreaterThanOrEqual(3);
    expect(total.durations).toBe(total.rounds);
    expect(total.received).toBe(3 * total.rounds);

    const site = platform.healthPorts['site-1'];
    expect((await get(`http://127.0.0.1:${site}/health/live`)).status).toBe(200);
    const siteReady = JSON.parse((await get(`http://127.0.0.1:${site}/health/ready`)).text);
    expect(Object.keys(siteReady.info)).toEqual(['broker']);
    expect(metric((await get(`http://127.0.0.1:${site}/metrics`)).text, /^fl_bus_bytes_received_total\{app="edge-worker"\}/)).toBeGreaterThan(0);
  });

  it("logs JSON lines, and a task's correlation id follows it from the request through the coordinator to every worker", async () => {
    const created = await platform.fetch('POST', '/tasks', {
      user_id: '9', use_case: 'iris', model_name: model.name, model_version: model.version, num_global_iterations: 1, run_name: 'traced', experiment_name: 'Default',
    }, { 'x-correlation-id': 'trace-e2e-42' });
    expect(created.headers.get('x-correlation-id')).toBe('trace-e2e-42');
    expect(created.body.correlation_id).toBe('trace-e2e-42');
    await platform.until('the traced task has ended', async () => ['success', 'failed'].includes((await platform.fetch('GET', `/tasks/${created.body.id}`)).body.status));
    const traced = (app: string) => platform.jsonLogLines(app).filter((l) => l.correlation_id === 'trace-e2e-42');
    expect(traced('gateway').length).toBeGreaterThan(0);
    // The coordinator logs its last line just after reporting success.
    await platform.until('the coordinator has logged the traced task as succeeded', async () =>
      [...traced('coordinator-1'), ...traced('coordinator-2')].some((l) => String(l.msg).includes('succeeded')),
    );
    for (const site of ['site-1', 'site-2', 'site-3']) {
      expect(traced(site)).toEqual(expect.arrayContaining([expect.objectContaining({ task_id: created.body.id, round: 1, msg: expect.stringContaining('trained on') })]));
    }
    // No line carries a credential.
    for (const app of ['gateway', 'coordinator-1', 'site-1']) expect(JSON.stringify(platform.jsonLogLines(app))).not.toMatch(/guest:guest|password/i);
  });

  it('refuses a bad body with 400 naming the field, and stores nothing', async () => {
    const before = (await platform.fetch('GET', '/tasks')).body.length;
    const good = { user_id: '1', use_case: 'iris', model_name: 'iris', model_version: 1, num_global_iterations: 3, run_name: 'r', experiment_name: 'e' };
    const missing = await platform.fetch('POST', '/tasks', { ...good, model_version: undefined });
    expect(missing.status).toBe(400);
    expect(missing.body.details).toEqual(expect.arrayContaining([expect.objectContaining({ field: 'model_version' })]));
    expect(missing.body.correlation_id).toEqual(expect.any(String));
    const illTyped = await platform.fetch('POST', '/tasks', { ...good, num_global_iterations: 'three' });
    expect(illTyped.status).toBe(400);
    expect(illTyped.body.details[0].field).toBe('num_global_iterations');
    const zeroRounds = await platform.fetch('POST', '/tasks', { ...good, num_global_iterations: 0 });
    expect(zeroRounds.status).toBe(400);
    const unknown = await platform.fetch('POST', '/tasks', { ...good, epochs: 5 });
    expect(unknown.status).toBe(400);
    expect(unknown.body.details[0].field).toBe('epochs');
    // A name MLflow would take but the built-in registry cannot hold: the registry's own 400.
    const badName = await platform.fetch('POST', '/tasks', { ...good, model_name: '../etc' });
    expect(badName.status).toBe(400);
    expect(badName.body.message).toContain('model name');
    const notJson = await platform.fetch('POST', '/tasks', '{"user_id": ');
    expect(notJson.status).toBe(400);
    expect((await platform.fetch('GET', '/tasks')).body.length).toBe(before);
  });

  it('refuses a model that is not registered and stores nothing', async () => {
    const before = await query(`SELECT id FROM gateway.tasks`);
    const res = await platform.fetch('POST', '/tasks', {
      user_id: '1', use_case: 'iris', model_name: 'iris', model_version: 99, num_global_iterations: 1, run_name: 'r', experiment_name: 'e',
    });
    expect(res.status).toBe(404);
    expect(res.body.message).toContain("model 'iris' version 99");
    const res2 = await platform.fetch('POST', '/tasks', {
      user_id: '1', use_case: 'iris', model_name: 'no_such_model', model_version: 1, num_global_iterations: 1, run_name: 'r', experiment_name: 'e',
    });
    expect(res2.status).toBe(404);
    expect(await query(`SELECT id FROM gateway.tasks`)).toEqual(before);
  });

  it('answers 404 with a JSON body for an unknown task', async () => {
    const res = await platform.fetch('GET', '/tasks/999999');
    expect(res.status).toBe(404);
    expect(res.body).toMatchObject({ statusCode: 404, message: 'task 999999 not found' });
    expect((await platform.fetch('PUT', '/tasks/cancel/999999')).status).toBe(404);
    expect((await platform.fetch('GET', '/tasks/abc')).status).toBe(400);
    expect((await platform.fetch('GET', '/tasks/99999999999')).status).toBe(400);
  });

  it('stops a running task on cancel within one round deadline', async () => {
    const roundTimeoutS = 10;
    const created = await platform.fetch('POST', '/tasks', {
      user_id: '2', use_case: 'iris', model_name: model.name, model_version: model.version, num_global_iterations: 10000,
      run_name: 'long', experiment_name: 'Default', round_timeout_s: roundTimeoutS,
    });
    expect(created.status).toBe(200);
    const id = created.body.id;
    await platform.until(`task ${id} has completed a round`, async () => (await platform.fetch('GET', `/tasks/${id}`)).body.current_round >= 1);
    const cancel = await platform.fetch('PUT', `/tasks/cancel/${id}`);
    expect(cancel.status).toBe(200);
    expect(cancel.body.cancel_requested_at).not.toBeNull();
    const task = await waitForStatus(id, ['cancelled', 'success', 'failed'], roundTimeoutS * 1000);
    expect(task.status).toBe('cancelled');
    expect(task.current_round).toBeLessThan(10000);
    const [run] = await query<{ state: string; outcome: string }>(`SELECT state, outcome FROM coordinator.task_runs WHERE task_id = $1`, [id]);
    expect(run).toEqual({ state: 'finished', outcome: 'cancelled' });
    const tracked = await query<{ status: string }>(`SELECT status FROM registry.runs WHERE tags->>'task_id' = $1 ORDER BY parent_run_id NULLS FIRST`, [String(id)]);
    expect(tracked.length).toBeGreaterThan(1);
    expect(new Set(tracked.map((r) => r.status))).toEqual(new Set(['KILLED']));
    // The round it was running (with the next one, if chained) ends cancelled: none is left running.
    const roundStatuses = async () => (await query<{ status: string }>(`SELECT status FROM coordinator.rounds WHERE task_id = $1`, [id])).map((r) => r.status);
    await platform.until(`no round of task ${id} is left running`, async () => !(await roundStatuses()).includes('running'));
    expect(await roundStatuses()).toContain('cancelled');
    // A final state is final: cancelling again changes nothing.
    const again = await platform.fetch('PUT', `/tasks/cancel/${id}`);
    expect(again.body.status).toBe('cancelled');
    expect((await platform.fetch('GET', `/tasks/user/2`)).body.map((t: any) => t.id)).toEqual([id]);
  });

  it('fails a task that cannot get enough workers, with a reason a person can act on', async () => {
    const created = await platform.fetch('POST', '/tasks', {
      user_id: '4', use_case: 'iris', model_name: model.name, model_version: model.version, num_global_iterations: 2,
      run_name: 'too-few', experiment_name: 'Default', min_fit_clients: 4,
    });
    expect(created.status).toBe(200);
    const task = await waitForStatus(created.body.id, ['failed', 'success', 'cancelled']);
    expect(task.status).toBe('failed');
    expect(task.reason).toBe(
      "round 1: 3 edge worker(s) serving use case 'iris' are online (site-1, site-2, site-3) but min_fit_clients is 4; start more workers or lower min_fit_clients",
    );
    expect(task.finished_at).not.toBeNull();
    const [run] = await query<{ state: string; outcome: string }>(`SELECT state, outcome FROM coordinator.task_runs WHERE task_id = $1`, [task.id]);
    expect(run).toEqual({ state: 'finished', outcome: 'failed' });
  });

  it('documents the API at /docs and /openapi.json', async () => {
    const spec = (await platform.fetch('GET', '/openapi.json')).body;
    expect(Object.keys(spec.paths)).toEqual(expect.arrayContaining(['/', '/tasks', '/tasks/{id}', '/tasks/user/{user_id}', '/tasks/cancel/{id}', '/tasks/{id}/rounds', '/models', '/nodes']));
    const props = spec.components.schemas.CreateTaskDto.properties;
    for (const [name, p] of Object.entries<any>(props)) expect({ name, example: p.example }).toEqual({ name, example: expect.anything() });
    const docs = await fetch(`${platform.gatewayUrl}/docs`);
    expect(docs.status).toBe(200);
    expect(await docs.text()).toContain('swagger-ui');
  });

  it('deletes all tasks, cancelling the active ones first, and the coordinators purge their records of them', async () => {
    const created = await platform.fetch('POST', '/tasks', {
      user_id: '3', use_case: 'iris', model_name: model.name, model_version: model.version, num_global_iterations: 10000,
      run_name: 'to-delete', experiment_name: 'Default', round_timeout_s: 10,
    });
    const id = created.body.id;
    await platform.until(`task ${id} is running`, async () => (await platform.fetch('GET', `/tasks/${id}`)).body.status === 'running');
    const res = await platform.fetch('DELETE', '/tasks');
    expect(res.status).toBe(200);
    expect(res.body.cancelled).toBe(1);
    expect((await platform.fetch('GET', '/tasks')).body).toEqual([]);
    // Stopped as cancelled (its tracked runs killed), then purged with every other deleted task (test/task-deletion.e2e-spec.ts has the details).
    await platform.until(`the coordinators hold no row of the deleted tasks`, async () => {
      const [{ n }] = await query<{ n: string }>(
        `SELECT (SELECT count(*) FROM coordinator.task_runs) + (SELECT count(*) FROM coordinator.rounds) + (SELECT count(*) FROM coordinator.checkpoints) AS n`,
      );
      return Number(n) === 0;
    }, 30_000);
    const tracked = await query<{ status: string }>(`SELECT status FROM registry.runs WHERE tags->>'task_id' = $1`, [String(id)]);
    expect(new Set(tracked.map((r) => r.status))).toEqual(new Set(['KILLED']));
  });
});
