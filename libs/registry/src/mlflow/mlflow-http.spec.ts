/**
 * MLflow transport behaviour: retries with backoff, timeouts, unreachable servers,
 * HTML error pages, MLflow's JSON errors, authentication, URI parsing.
 */
import { FakeMlflow, startFakeMlflow } from '../../test/fake-mlflow-server';
import { parseRunsUri, proxyPathOf } from './artifact-uri';
import { MlflowApiError, queryString } from './mlflow-http-client';
import { MlflowModelRegistry, MlflowModelRegistryOptions } from './mlflow-model-registry';

jest.setTimeout(20_000);

const art = [{ path: 'model.onnx', data: Buffer.from('graph') }];

describe('MlflowModelRegistry transport', () => {
  let fake: FakeMlflow;
  const make = (o: Partial<MlflowModelRegistryOptions> = {}) => new MlflowModelRegistry({ trackingUri: fake.url, retryBaseMs: 5, ...o });
  const calls = (suffix: string) => fake.requests.filter((r) => r.path.endsWith(suffix));

  beforeEach(async () => {
    fake = await startFakeMlflow();
  });
  afterEach(async () => {
    await fake.close();
  });

  it('retries 503 with backoff, then succeeds; each retry is logged', async () => {
    const warn = jest.fn();
    const reg = make({ logger: { warn } });
    fake.failNext(2, 503);
    await reg.createModel('m');
    expect(calls('/registered-models/create').map((r) => r.status)).toEqual([503, 503, 200]);
    expect(warn).toHaveBeenCalledTimes(2);
    expect(warn.mock.calls[0][0]).toMatch(/HTTP 503.*retry 1\/4 in \d+ ms/);
    expect(fake.state.models.has('m')).toBe(true);
  });

  it('backoff grows exponentially (full jitter under a doubling cap)', async () => {
    const delays: number[] = [];
    const reg = make({ retryBaseMs: 40, maxRetries: 3, logger: { warn: (m) => delays.push(Number(/in (\d+) ms/.exec(m)![1])) } });
    const rnd = jest.spyOn(Math, 'random').mockReturnValue(0.999);
    try {
      fake.failNext(3, 502);
      await reg.listModels();
    } finally {
      rnd.mockRestore();
    }
    expect(delays).toEqual([40, 80, 160]);
  });

  it('retries 429 too', async () => {
    fake.failNext(1, 429);
    await make().createModel('m');
    expect(calls('/registered-models/create').map((r) => r.status)).toEqual([429, 200]);
  });

  it('gives up after maxRetries with a clear error naming method, URL and status', async () => {
    fake.failNext(100, 503);
    const err = await make({ maxRetries: 2 }).createModel('m').catch((e) => e);
    expect(err).toBeInstanceOf(MlflowApiError);
    expect(err).toMatchObject({ code: 'BACKEND', status: 503, method: 'POST' });
    expect(err.message).toContain(`POST ${fake.url}/api/2.0/mlflow/registered-models/create`);
    expect(err.message).toMatch(/HTTP 503 Service Unavailable/);
    expect(err.message).toMatch(/gave up after 3 attempts/);
    expect(calls('/registered-models/create')).toHaveLength(3);
  });

  it('does not retry a 400; INVALID_PARAMETER_VALUE becomes INVALID_ARGUMENT carrying MLflow\'s message', async () => {
    const reg = make();
    fake.failNext(1, 400);
    await expect(reg.createModel('m')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', errorCode: 'INVALID_PARAMETER_VALUE', status: 400 });
    expect(calls('/registered-models/create')).toHaveLength(1);
    // a real validation error from the server, reached through the client directly
    const { runId } = await reg.startRun({ experimentName: 'e', runName: 'r' });
    const metrics = Array.from({ length: 1001 }, (_, i) => ({ key: 'k', value: i, timestamp: 1, step: i }));
    const err = await reg.http.call('POST', 'runs/log-batch', { run_id: runId, metrics }).catch((e) => e);
    expect(err).toMatchObject({ code: 'INVALID_ARGUMENT', mlflowMessage: expect.stringContaining('at most 1000 metrics') });
    expect(err.message).toContain('at most 1000 metrics');
  });

  it('a timeout gives a clear error naming the URL; a retry after a timeout can succeed', async () => {
    fake.delayNext(1_000);
    const err = await make({ timeoutMs: 100, maxRetries: 0 }).listModels().catch((e) => e);
    expect(err).toMatchObject({ code: 'BACKEND', method: 'GET' });
    expect(err.message).toContain(`${fake.url}/api/2.0/mlflow/registered-models/search`);
    expect(err.message).toMatch(/no answer within 100 ms/);
    fake.delayNext(1_000);
    await expect(make({ timeoutMs: 100, maxRetries: 1 }).listModels()).resolves.toEqual([]);
  });

  it('an unreachable server (closed port) gives a clear error naming the URL and the cause', async () => {
    const url = fake.url;
    await fake.close();
    const err = await new MlflowModelRegistry({ trackingUri: url, maxRetries: 1, retryBaseMs: 1 }).getVersion('m', 1).catch((e) => e);
    expect(err).toMatchObject({ code: 'BACKEND' });
    expect(err.message).toContain(`GET ${url}/api/2.0/mlflow/model-versions/get?name=m&version=1`);
    expect(err.message).toMatch(/server unreachable: ECONNREFUSED/);
    expect(err.message).toMatch(/gave up after 2 attempts/);
    fake = await startFakeMlflow(); // for afterEach
  });

  it('an HTML 404 (wrong base URL / unknown endpoint) is a clear BACKEND error, not "not found", and not retried', async () => {
    const reg = make({ trackingUri: `${fake.url}/not-mlflow` });
    const err = await reg.getVersion('m', 1).catch((e) => e);
    expect(err).toMatchObject({ code: 'BACKEND', status: 404 });
    expect(err.message).toContain(`${fake.url}/not-mlflow/api/2.0/mlflow/model-versions/get`);
    expect(err.message).toMatch(/HTML page: "404 Not Found"/);
    expect(err.message).toMatch(/not an MLflow 2.x REST endpoint/);
    expect(fake.requests).toHaveLength(1);
  });

  it('an HTML 405 (wrong method) is a clear BACKEND error', async () => {
    const err = await make().http.call('POST', 'registered-models/get', { name: 'm' }).catch((e) => e);
    expect(err).toMatchObject({ code: 'BACKEND', status: 405 });
    expect(err.message).toMatch(/POST .*registered-models\/get failed: HTTP 405 Method Not Allowed, an HTML page: "405 Method Not Allowed"/);
  });

  it('does not send a model version again when its answer was lost (it may exist): no duplicate version', async () => {
    const reg = make({ timeoutMs: 150 });
    await reg.createModel('m');
    // The server creates the version, but only after the client has given up waiting.
    fake.delayNext(400, 'model-versions/create');
    const err = await reg.createVersion('m', art, { tags: { task_id: '7' } }).catch((e) => e);
    expect(err).toMatchObject({ code: 'BACKEND', message: expect.stringMatching(/model-versions\/create failed: no answer within 150 ms$/) });
    const creates = () => calls('/model-versions/create');
    expect(creates()).toHaveLength(1);
    // Once the server has done it, the version is there once, found by its tags as a task's next registration attempt looks for it.
    for (let i = 0; i < 100 && creates()[0].status === undefined; i++) await new Promise((r) => setTimeout(r, 20));
    expect(creates().map((r) => r.status)).toEqual([200]);
    expect((await reg.searchVersions({ name: 'm', tags: { task_id: '7' } })).map((v) => v.version)).toEqual([1]);
  });

  it('sends a model version again after 429, which the server did not act on', async () => {
    const reg = make();
    await reg.createModel('m');
    fake.failNext(1, 429, 'model-versions/create');
    expect((await reg.createVersion('m', art)).version).toBe(1);
    expect(calls('/model-versions/create').map((r) => r.status)).toEqual([429, 200]);
    expect((await reg.searchVersions({ name: 'm' })).map((v) => v.version)).toEqual([1]);
  });

  it('a registry outage in the middle of createVersion surfaces as BACKEND; nothing half-registered; its own run ends FAILED', async () => {
    const reg = make({ maxRetries: 1 });
    await reg.createModel('m');
    fake.failNext(100, 502, 'model-versions/create');
    await expect(reg.createVersion('m', art)).rejects.toMatchObject({ code: 'BACKEND', status: 502, message: expect.stringContaining('model-versions/create') });
    fake.failNext(100, 500, 'mlflow-artifacts');
    await expect(reg.createVersion('m', art)).rejects.toMatchObject({ code: 'BACKEND', status: 500, method: 'PUT' });
    fake.failNext(0);
    expect(await reg.searchVersions({ name: 'm' })).toEqual([]);
    const statuses = [...fake.state.runs.values()].map((r) => r.info.status);
    expect(statuses).toEqual(['FINISHED', 'FAILED']); // uploads done, registration failed / uploads failed
    expect((await reg.createVersion('m', art)).version).toBe(1);
  });
});

describe('MlflowModelRegistry authentication', () => {
  let fake: FakeMlflow;
  afterEach(async () => {
    await fake?.close();
  });

  it('basic auth: sent from options or from credentials in the URL; never printed', async () => {
    fake = await startFakeMlflow({ requireAuth: { username: 'alice', password: 's3cr:et' } });
    const anonymous = new MlflowModelRegistry({ trackingUri: fake.url, maxRetries: 0 });
    const err = await anonymous.listModels().catch((e) => e);
    expect(err).toMatchObject({ code: 'BACKEND', status: 401 });
    expect(err.message).toMatch(/HTTP 401 .*check the MLflow credentials/);
    expect(fake.requests.at(-1)!.status).toBe(401);

    await new MlflowModelRegistry({ trackingUri: fake.url, username: 'alice', password: 's3cr:et' }).createModel('a');
    const inUrl = fake.url.replace('http://', `http://alice:${encodeURIComponent('s3cr:et')}@`);
    const reg = new MlflowModelRegistry({ trackingUri: inUrl });
    expect((await reg.listModels()).map((m) => m.name)).toEqual(['a']);
    expect(reg.http.baseUrl).toBe(fake.url);

    const wrong = new MlflowModelRegistry({ trackingUri: fake.url.replace('http://', 'http://alice:hunter2@'), maxRetries: 0 });
    const err2 = await wrong.listModels().catch((e) => e);
    expect(err2.status).toBe(401);
    expect(err2.message).not.toContain('hunter2');
    expect(err2.message).toContain(fake.url);
  });

  it('bearer token', async () => {
    fake = await startFakeMlflow({ requireAuth: { token: 'tok-123' } });
    await expect(new MlflowModelRegistry({ trackingUri: fake.url, token: 'nope', maxRetries: 0 }).listModels()).rejects.toMatchObject({ status: 401 });
    const reg = new MlflowModelRegistry({ trackingUri: fake.url, token: 'tok-123' });
    await reg.createModel('t');
    const v = await reg.createVersion('t', art);
    expect((await reg.downloadArtifacts('t', v.version))[0].data.toString()).toBe('graph');
  });

  it('rejects a tracking URI that is not http(s)', () => {
    expect(() => new MlflowModelRegistry({ trackingUri: 'not a url' })).toThrow(/not a URL/);
    expect(() => new MlflowModelRegistry({ trackingUri: 'file:///tmp/mlruns' })).toThrow(/must be http\(s\)/);
    expect(() => new MlflowModelRegistry({ trackingUri: 'x://u:pw@host' })).toThrow(/must be http\(s\)/);
  });
});

describe('MLflow URIs', () => {
  it('mlflow-artifacts: both forms map to the proxy path', () => {
    expect(proxyPathOf('mlflow-artifacts:/1/abc/artifacts/model')).toBe('1/abc/artifacts/model');
    expect(proxyPathOf('mlflow-artifacts://mlflow.internal:5000/1/abc/artifacts/model/')).toBe('1/abc/artifacts/model');
    expect(() => proxyPathOf('mlflow-artifacts:/1/../etc')).toThrow(/'\.\.'/);
    expect(() => proxyPathOf('s3://b/k')).toThrow(/scheme 's3:'/);
    expect(() => proxyPathOf('/mnt/mlruns/1')).toThrow(/scheme '\(none: a plain path\)'/);
  });

  it('runs:/<id>/<path>', () => {
    expect(parseRunsUri('runs:/abc/model')).toEqual({ runId: 'abc', path: 'model' });
    expect(parseRunsUri('runs:/abc')).toEqual({ runId: 'abc', path: '' });
    expect(parseRunsUri('runs:/abc/a/b/')).toEqual({ runId: 'abc', path: 'a/b' });
    expect(parseRunsUri('mlflow-artifacts:/x')).toBeNull();
    expect(() => parseRunsUri('runs:/')).toThrow(/names no run/);
  });

  it('query strings skip undefined and repeat arrays', () => {
    expect(queryString({ a: 1, b: undefined, c: ['x', 'y z'] })).toBe('?a=1&c=x&c=y+z');
    expect(queryString({})).toBe('');
  });
});
