/**
 * Behaviour every LocalModelRegistry setup must show; run against real PostgreSQL
 * and against embedded PGlite by the two *.spec.ts files beside this one.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LocalModelRegistry } from './local-model-registry';
import { ModelNotFoundError, ModelVersionNotFoundError, RegistryError, RegistryValidationError, RunNotFoundError } from './model-registry';
import { PACKAGE_HASH_TAG, publishModelPackage } from './publish';

export interface ContractEnv {
  registry: LocalModelRegistry;
  artifactDir: string;
}

export function registryContract(label: string, setup: (artifactDir: string) => Promise<{ registry: LocalModelRegistry; teardown(): Promise<void> }>) {
  describe(`LocalModelRegistry (${label})`, () => {
    let reg: LocalModelRegistry;
    let teardown: () => Promise<void>;
    let artifactDir: string;

    beforeAll(async () => {
      artifactDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fl-registry-'));
      ({ registry: reg, teardown } = await setup(artifactDir));
    });
    afterAll(async () => {
      await teardown?.();
      fs.rmSync(artifactDir, { recursive: true, force: true });
    });

    const art = (s: string) => [{ path: 'model.onnx', data: Buffer.from(s) }];

    it('createModel is idempotent; createVersion numbers 1, 2, 3', async () => {
      await reg.createModel('mlp', { description: 'an MLP', tags: { team: 'a' } });
      await reg.createModel('mlp', { description: 'ignored' });
      const vs = [];
      for (let i = 0; i < 3; i++) vs.push(await reg.createVersion('mlp', art(`v${i}`), { tags: { i: String(i) } }));
      expect(vs.map((v) => v.version)).toEqual([1, 2, 3]);
      expect(vs[0].source).toBe('local-artifacts:/mlp/1');
      expect(vs[0].createdAt).toBeInstanceOf(Date);
      const models = await reg.listModels();
      expect(models).toEqual([{ name: 'mlp', description: 'an MLP', latestVersion: 3, tags: { team: 'a' } }]);
    });

    it('concurrent createVersion calls get distinct, gapless numbers', async () => {
      await reg.createModel('conc');
      const vs = await Promise.all(Array.from({ length: 8 }, (_, i) => reg.createVersion('conc', art(`c${i}`))));
      expect(vs.map((v) => v.version).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
      // each version holds its own bytes
      for (const v of vs) {
        const files = await reg.downloadArtifacts('conc', v.version);
        expect(files).toHaveLength(1);
      }
      const contents = await Promise.all(vs.map((v) => reg.downloadArtifacts('conc', v.version)));
      expect(new Set(contents.map((c) => c[0].data.toString())).size).toBe(8);
    });

    it('artifacts round-trip byte-exact, nested paths, sorted', async () => {
      await reg.createModel('bytes');
      const big = Buffer.alloc(3 * 1024 * 1024 + 7);
      for (let i = 0; i < big.length; i++) big[i] = (i * 2654435761) >>> 24;
      const arts = [
        { path: 'weights/init.safetensors', data: big },
        { path: 'manifest.json', data: Buffer.from('{"a":1}') },
        { path: 'empty.bin', data: Buffer.alloc(0) },
      ];
      const v = await reg.createVersion('bytes', arts, { description: 'd', runId: 'r1' });
      expect(v).toMatchObject({ description: 'd', runId: 'r1' });
      const got = await reg.downloadArtifacts('bytes', v.version);
      expect(got.map((a) => a.path)).toEqual(['empty.bin', 'manifest.json', 'weights/init.safetensors']);
      expect(got[2].data.equals(big)).toBe(true);
      expect(got[0].data.length).toBe(0);
      expect(fs.existsSync(path.join(artifactDir, 'bytes', String(v.version), 'weights', 'init.safetensors'))).toBe(true);
      // nothing left in staging
      expect(fs.readdirSync(path.join(artifactDir, '.staging'))).toEqual([]);
    });

    it('rejects path traversal, absolute paths, bad names; changes nothing', async () => {
      await reg.createModel('safe');
      for (const p of ['../evil', 'a/../../evil', '/etc/passwd', 'C:/x', 'a\\b', '', 'a//b', './a', 'a/.']) {
        await expect(reg.createVersion('safe', [{ path: p, data: Buffer.from('x') }])).rejects.toBeInstanceOf(RegistryValidationError);
      }
      await expect(reg.createVersion('safe', [{ path: 'a', data: Buffer.from('x') }, { path: 'a/b', data: Buffer.from('y') }])).rejects.toThrow(/file and also a folder/);
      await expect(reg.createVersion('safe', [{ path: 'a', data: Buffer.from('x') }, { path: 'a', data: Buffer.from('y') }])).rejects.toThrow(/twice/);
      await expect(reg.createVersion('safe', [])).rejects.toThrow(/at least one artifact/);
      for (const n of ['../x', 'a/b', '.hidden', '', 'x'.repeat(129), 'sp ace']) {
        await expect(reg.createModel(n)).rejects.toThrow(/Invalid model name/);
      }
      expect(await reg.searchVersions({ name: 'safe' })).toEqual([]);
      expect(fs.existsSync(path.join(artifactDir, 'evil'))).toBe(false);
      expect(fs.existsSync(path.join(os.tmpdir(), 'evil'))).toBe(false);
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
      await expect(reg.setVersionTag('mlp', 99, 'k', 'v')).rejects.toBeInstanceOf(ModelVersionNotFoundError);
      await expect(reg.setAlias('mlp', 'champion', 99)).rejects.toBeInstanceOf(ModelVersionNotFoundError);
      await expect(reg.setAlias('nope', 'champion', 1)).rejects.toBeInstanceOf(ModelNotFoundError);
      await expect(reg.getVersion('mlp', 0)).rejects.toBeInstanceOf(RegistryValidationError);
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
      await reg.logParams(runId, { lr: '0.1', rounds: '3' });
      await reg.logParams(runId, { lr: '0.1' }); // same value: fine
      await expect(reg.logParams(runId, { lr: '0.2' })).rejects.toMatchObject({ code: 'CONFLICT' });
      const ts = new Date('2025-01-02T03:04:05.678Z');
      await reg.logMetrics(runId, [
        { key: 'loss', value: 0.9, step: 1, timestamp: ts },
        { key: 'loss', value: 0.5, step: 2 },
        { key: 'accuracy', value: 0.75, step: 2 },
      ]);
      await reg.logMetrics(runId, [{ key: 'loss', value: 0.4, step: 2 }]); // overwrite
      await reg.endRun(runId, 'FINISHED');
      const run = await reg.getRun(runId);
      expect(run).toMatchObject({
        runId, experimentName: 'exp', runName: 'task-1/server', parentRunId: parent, status: 'FINISHED',
        params: { lr: '0.1', rounds: '3' }, tags: { task_id: '1' }, metrics: { loss: 0.4, accuracy: 0.75 },
      });
      expect(run!.endTime).toBeInstanceOf(Date);
      const hist = await reg.getMetricHistory(runId, 'loss');
      expect(hist.map((h) => [h.step, h.value])).toEqual([[1, 0.9], [2, 0.4]]);
      expect(hist[0].timestamp.toISOString()).toBe(ts.toISOString());
      expect(await reg.getRun('missing')).toBeNull();
      await expect(reg.logMetrics('missing', [{ key: 'x', value: 1, step: 0 }])).rejects.toBeInstanceOf(RunNotFoundError);
      await expect(reg.endRun('missing', 'FAILED')).rejects.toBeInstanceOf(RunNotFoundError);
      await expect(reg.logMetrics(runId, [{ key: 'x', value: 1, step: -1 }])).rejects.toBeInstanceOf(RegistryValidationError);
    });
  });
}
