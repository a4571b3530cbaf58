/**
 * Behaviour every ModelRegistry backend must show. Run against the built-in backend
 * (PGlite and real PostgreSQL) and against MlflowModelRegistry on the fake MLflow
 * server. Checks where backends legitimately differ (name rules, source URIs, files on
 * disk) live in the backend-specific specs, passed in as `extra`.
 */
import {
  ModelNotFoundError,
  ModelRegistry,
  ModelVersionInfo,
  ModelVersionNotFoundError,
  RegistryError,
  RegistryValidationError,
  RunNotFoundError,
} from './model-registry';
import { PACKAGE_HASH_TAG, publishModelPackage } from './publish';

/** Both backends also read aliases back (not part of ModelRegistry). */
export type ContractRegistry = ModelRegistry & {
  getVersionByAlias(name: string, alias: string): Promise<ModelVersionInfo | null>;
};

export function registryContract<R extends ContractRegistry>(
  label: string,
  setup: () => Promise<{ registry: R; teardown(): Promise<void> }>,
  extra?: (get: () => R) => void,
) {
  describe(`ModelRegistry contract: ${label}`, () => {
    let reg: R;
    let teardown: (() => Promise<void>) | undefined;

    beforeAll(async () => {
      ({ registry: reg, teardown } = await setup());
    });
    afterAll(async () => {
      await teardown?.();
    });

    const art = (s: string) => [{ path: 'model.onnx', data: Buffer.from(s) }];

    it('createModel is idempotent; createVersion numbers 1, 2, 3', async () => {
      await reg.createModel('mlp', { description: 'an MLP', tags: { team: 'a' } });
      await reg.createModel('mlp', { description: 'ignored' });
      const vs = [];
      for (let i = 0; i < 3; i++) vs.push(await reg.createVersion('mlp', art(`v${i}`), { tags: { i: String(i) } }));
      expect(vs.map((v) => v.version)).toEqual([1, 2, 3]);
      expect(vs[0]).toMatchObject({ name: 'mlp', tags: { i: '0' } });
      expect(typeof vs[0].source).toBe('string');
      expect(vs[0].source).not.toBe(vs[1].source);
      expect(vs[0].createdAt).toBeInstanceOf(Date);
      expect(Math.abs(vs[0].createdAt.getTime() - Date.now())).toBeLessThan(60_000);
      expect(await reg.getVersion('mlp', 2)).toEqual(vs[1]);
      const models = await reg.listModels();
      expect(models).toEqual([{ name: 'mlp', description: 'an MLP', latestVersion: 3, tags: { team: 'a' } }]);
    });

    it('concurrent createVersion calls get distinct, gapless numbers, each with its own bytes', async () => {
      await reg.createModel('conc');
      const vs = await Promise.all(Array.from({ length: 8 }, (_, i) => reg.createVersion('conc', art(`c${i}`))));
      expect(vs.map((v) => v.version).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
      const contents = await Promise.all(vs.map((v) => reg.downloadArtifacts('conc', v.version)));
      expect(contents.every((c) => c.length === 1)).toBe(true);
      expect(new Set(contents.map((c) => c[0].data.toString())).size).toBe(8);
    });

    it('artifacts round-trip byte-exact, nested paths, sorted; a given run is recorded', async () => {
      await reg.createModel('bytes');
      const { runId } = await reg.startRun({ experimentName: 'contract-artifacts', runName: 'producer' });
      const big = Buffer.alloc(3 * 1024 * 1024 + 7);
      for (let i = 0; i < big.length; i++) big[i] = (i * 2654435761) >>> 24;
      const arts = [
        { path: 'weights/init.safetensors', data: big },
        { path: 'manifest.json', data: Buffer.from('{"a":1}') },
        { path: 'empty.bin', data: Buffer.alloc(0) },
        { path: 'a b/%41+ü.txt', data: Buffer.from('odd name') },
      ];
      const v = await reg.createVersion('bytes', arts, { description: 'd', runId });
      expect(v).toMatchObject({ description: 'd', runId });
      const got = await reg.downloadArtifacts('bytes', v.version);
      expect(got.map((a) => a.path)).toEqual(['a b/%41+ü.txt', 'empty.bin', 'manifest.json', 'weights/init.safetensors']);
      expect(got[3].data.equals(big)).toBe(true);
      expect(got[1].data.length).toBe(0);
      expect(got[0].data.toString()).toBe('odd name');
    });

    it('rejects bad artifact lists before storing anything', async () => {
      await reg.createModel('safe');
      for (const p of ['../evil', 'a/../../evil', '/etc/passwd', 'C:/x', 'a\\b', '', 'a//b', './a', 'a/.']) {
        await expect(reg.createVersion('safe', [{ path: p, data: Buffer.from('x') }])).rejects.toBeInstanceOf(RegistryValidationError);
      }
      await expect(reg.createVersion('safe', [{ path: 'a', data: Buffer.from('x') }, { path: 'a/b', data: Buffer.from('y') }])).rejects.toThrow(/file and also a folder/);
      await expect(reg.createVersion('safe', [{ path: 'a', data: Buffer.from('x') }, { path: 'a', data: Buffer.from('y') }])).rejects.toThrow(/twice/);
      await expect(reg.createVersion('safe', [])).rejects.toThrow(/at least one artifact/);
      await expect(reg.createVersion('safe', [{ path: 'a', data: 'x' as unknown as Buffer }])).rejects.toThrow(/must be a Buffer/);
      await expect(reg.createModel('')).rejects.toThrow(/Invalid model name/);
      expect(await reg.searchVersions({ name: 'safe' })).toEqual([]);
    });

    it('missing model / version', async () => {
      expect(await reg.getVersion('mlp', 99)).toBeNull();
      expect(await reg.getVersion('nope', 1)).toBeNull();
      await expect(reg.createVersion('nope', art('x'))).rejects.toBeInstanceOf(ModelNotFoundError);
      await expect(reg.createVersion('nope', art('x'))).rejects.toThrow("Registered model 'nope' does not exist");
      const err = await reg.downloadArtifacts('mlp', 99).catch((e) => e);
      expect(err).toBeInstanceOf(ModelVersionNotFoundError);
      expect(err).toBeInstanceOf(RegistryError);
      expect(err).toMatchObject({ modelName: 'mlp', version: 99, code: 'NOT_FOUND' });
      await expect(reg.downloadArtifacts('nope', 1)).rejects.toMatchObject({ code: 'NOT_FOUND' });
      await expect(reg.setVersionTag('mlp', 99, 'k', 'v')).rejects.toBeInstanceOf(ModelVersionNotFoundError);
      await expect(reg.setAlias('mlp', 'champion', 99)).rejects.toBeInstanceOf(ModelVersionNotFoundError);
      await expect(reg.setAlias('nope', 'champion', 1)).rejects.toBeInstanceOf(ModelNotFoundError);
      await expect(reg.getVersion('mlp', 0)).rejects.toBeInstanceOf(RegistryValidationError);
      await expect(reg.getVersion('mlp', 1.5)).rejects.toBeInstanceOf(RegistryValidationError);
    });

    it('tags, search by tag, aliases', async () => {
      await reg.setVersionTag('mlp', 2, 'trained', 'true');
      await reg.setVersionTag('mlp', 2, 'use_case', 'mnist');
      await reg.setVersionTag('mlp', 3, 'use_case', 'mnist');
      expect((await reg.getVersion('mlp', 2))!.tags).toEqual({ i: '1', trained: 'true', use_case: 'mnist' });
      const found = await reg.searchVersions({ tags: { use_case: 'mnist' } });
      expect(found.map((v) => `${v.name}:${v.version}`)).toEqual(['mlp:2', 'mlp:3']);
      const both = await reg.searchVersions({ name: 'mlp', tags: { use_case: 'mnist', trained: 'true' } });
      expect(both.map((v) => v.version)).toEqual([2]);
      expect((await reg.searchVersions({ name: 'mlp' })).map((v) => v.version)).toEqual([1, 2, 3]);
      const all = await reg.searchVersions({});
      expect(all.map((v) => `${v.name}:${v.version}`).slice(0, 4)).toEqual(['bytes:1', 'conc:1', 'conc:2', 'conc:3']);
      await reg.setAlias('mlp', 'champion', 2);
      expect((await reg.getVersionByAlias('mlp', 'champion'))!.version).toBe(2);
      await reg.setAlias('mlp', 'champion', 3);
      expect((await reg.getVersionByAlias('mlp', 'champion'))!.version).toBe(3);
      expect(await reg.getVersionByAlias('mlp', 'nobody')).toBeNull();
    });

    it('publishing the same package twice returns the same version', async () => {
      const files = { 'model.onnx': Buffer.from('graph'), 'manifest.json': Buffer.from('{}') };
      const a = await publishModelPackage(reg, 'pkg', files, { use_case: 'heart' });
      expect(a.created).toBe(true);
      expect(a.version.tags[PACKAGE_HASH_TAG]).toMatch(/^[0-9a-f]{64}$/);
      expect(a.version.tags.use_case).toBe('heart');
      const b = await publishModelPackage(reg, 'pkg', { 'manifest.json': Buffer.from('{}'), 'model.onnx': Buffer.from('graph') }, { use_case: 'heart' });
      expect(b).toEqual({ version: a.version, created: false });
      const [c, d] = await Promise.all([
        publishModelPackage(reg, 'pkg', { 'model.onnx': Buffer.from('graph2') }, {}),
        publishModelPackage(reg, 'pkg', { 'model.onnx': Buffer.from('graph2') }, {}),
      ]);
      expect(c.version.version).toBe(d.version.version);
      expect([c.created, d.created].sort()).toEqual([false, true]);
      expect((await reg.searchVersions({ name: 'pkg' })).map((v) => v.version)).toEqual([1, 2]);
      expect((await reg.downloadArtifacts('pkg', 1)).map((x) => x.path)).toEqual(['manifest.json', 'model.onnx']);
    });

    it('runs: params, metrics, end status read back', async () => {
      const { runId: parent } = await reg.startRun({ experimentName: 'exp', runName: 'task-1' });
      const { runId } = await reg.startRun({ experimentName: 'exp', runName: 'task-1/server', parentRunId: parent, tags: { task_id: '1' } });
      expect(runId).toMatch(/^[0-9a-f]{32}$/);
      expect(runId).not.toBe(parent);
      await reg.logParams(runId, { lr: '0.1', rounds: '3' });
      await reg.logParams(runId, { lr: '0.1' }); // same value: fine
      await expect(reg.logParams(runId, { lr: '0.2' })).rejects.toMatchObject({ code: 'CONFLICT' });
      const ts = new Date('2025-01-02T03:04:05.678Z');
      await reg.logMetrics(runId, [
        { key: 'loss', value: 0.9, step: 1, timestamp: ts },
        { key: 'loss', value: 0.5, step: 2 },
        { key: 'accuracy', value: 0.75, step: 2 },
      ]);
      await reg.logMetrics(runId, [{ key: 'loss', value: 0.4, step: 2 }]); // overwrite, even within the same millisecond
      await reg.logMetrics(runId, []);
      const running = await reg.getRun(runId);
      expect(running).toMatchObject({ status: 'RUNNING' });
      expect(running!.endTime).toBeUndefined();
      await reg.endRun(runId, 'FINISHED');
      const run = await reg.getRun(runId);
      expect(run).toMatchObject({
        runId, experimentName: 'exp', runName: 'task-1/server', parentRunId: parent, status: 'FINISHED',
        params: { lr: '0.1', rounds: '3' }, tags: { task_id: '1' }, metrics: { loss: 0.4, accuracy: 0.75 },
      });
      expect(run!.startTime).toBeInstanceOf(Date);
      expect(run!.endTime).toBeInstanceOf(Date);
      expect((await reg.getRun(parent))!.parentRunId).toBeUndefined();
      const hist = await reg.getMetricHistory(runId, 'loss');
      expect(hist.map((h) => [h.step, h.value])).toEqual([[1, 0.9], [2, 0.4]]);
      expect(hist[0].timestamp.toISOString()).toBe(ts.toISOString());
      expect(await reg.getRun('0123456789abcdef0123456789abcdef')).toBeNull();
      await expect(reg.logMetrics('0123456789abcdef0123456789abcdef', [{ key: 'x', value: 1, step: 0 }])).rejects.toBeInstanceOf(RunNotFoundError);
      await expect(reg.logParams('0123456789abcdef0123456789abcdef', { a: '1' })).rejects.toBeInstanceOf(RunNotFoundError);
      await expect(reg.endRun('0123456789abcdef0123456789abcdef', 'FAILED')).rejects.toBeInstanceOf(RunNotFoundError);
      await expect(reg.logMetrics(runId, [{ key: 'x', value: 1, step: -1 }])).rejects.toBeInstanceOf(RegistryValidationError);
      await expect(reg.endRun(runId, 'DONE' as 'FINISHED')).rejects.toBeInstanceOf(RegistryValidationError);
    });

    it("several runs' metrics in one call; an unknown run is named", async () => {
      const { runId: a } = await reg.startRun({ experimentName: 'exp', runName: 'round/task' });
      const { runId: b } = await reg.startRun({ experimentName: 'exp', runName: 'round/site', parentRunId: a });
      await reg.logMetricsOfRuns([
        { runId: a, metrics: [{ key: 'eval_loss', value: 0.5, step: 1 }, { key: 'eval_loss', value: 0.4, step: 2 }] },
        { runId: b, metrics: [{ key: 'train_loss', value: 0.7, step: 1 }] },
        { runId: b, metrics: [] },
      ]);
      await reg.logMetricsOfRuns([{ runId: b, metrics: [{ key: 'train_loss', value: 0.6, step: 1 }] }]); // overwrite
      await reg.logMetricsOfRuns([]);
      expect((await reg.getMetricHistory(a, 'eval_loss')).map((h) => [h.step, h.value])).toEqual([[1, 0.5], [2, 0.4]]);
      expect((await reg.getMetricHistory(b, 'train_loss')).map((h) => [h.step, h.value])).toEqual([[1, 0.6]]);
      const unknown = '0123456789abcdef0123456789abcdef';
      await expect(reg.logMetricsOfRuns([{ runId: unknown, metrics: [{ key: 'x', value: 1, step: 0 }] }])).rejects.toMatchObject({ message: expect.stringContaining(unknown) });
      await expect(reg.logMetricsOfRuns([{ runId: a, metrics: [{ key: 'x', value: 1, step: -1 }] }])).rejects.toBeInstanceOf(RegistryValidationError);
    });

    it('many params and metrics in one call; non-finite metric values', async () => {
      const { runId } = await reg.startRun({ experimentName: 'exp', runName: 'bulk' });
      const params = Object.fromEntries(Array.from({ length: 250 }, (_, i) => [`p${i}`, String(i)]));
      await reg.logParams(runId, params);
      const points = Array.from({ length: 2500 }, (_, i) => ({ key: `m${i % 5}`, value: i, step: Math.floor(i / 5) }));
      await reg.logMetrics(runId, points);
      await reg.logMetrics(runId, [{ key: 'odd', value: NaN, step: 0 }, { key: 'odd', value: Infinity, step: 1 }]);
      const run = await reg.getRun(runId);
      expect(Object.keys(run!.params)).toHaveLength(250);
      expect(run!.params.p249).toBe('249');
      expect(run!.metrics.m4).toBe(2499);
      expect((await reg.getMetricHistory(runId, 'm0')).length).toBe(500);
      expect((await reg.getMetricHistory(runId, 'odd')).map((p) => p.value)).toEqual([NaN, Infinity]);
    });

    extra?.(() => reg);
  });
}
