/**
 * The ModelRegistry contract against MlflowModelRegistry on the in-test fake MLflow
 * server, plus what only the MLflow backend does (source URIs, runs:/ sources, its own
 * publishing runs, looser model names, pagination).
 */
import { FakeMlflow, startFakeMlflow } from '../../test/fake-mlflow-server';
import { publishModelPackage } from '../publish';
import { registryContract } from '../registry.contract';
import { MlflowModelRegistry } from './mlflow-model-registry';

jest.setTimeout(30_000);

let fake: FakeMlflow;
registryContract(
  'MlflowModelRegistry (fake MLflow server, 2-item pages)',
  async () => {
    // small pages so that every search in the contract follows next_page_token
    fake = await startFakeMlflow({ maxPageSize: 2 });
    return { registry: new MlflowModelRegistry({ trackingUri: fake.url, retryBaseMs: 1 }), teardown: () => fake.close() };
  },
  (get) => {
    it('mlflow: sources are mlflow-artifacts:/<experiment>/<run>/artifacts/model; files sit behind the artifact proxy', async () => {
      const v = (await get().getVersion('mlp', 1))!;
      expect(v.source).toMatch(/^mlflow-artifacts:\/\d+\/[0-9a-f]{32}\/artifacts\/model$/);
      expect(v.source).toContain(`/${v.runId}/`);
      const root = v.source.slice('mlflow-artifacts:/'.length);
      expect(fake.state.artifacts.get(`${root}/model.onnx`)!.toString()).toBe('v0');
      // without runId, each version gets its own run in the packages experiment, ended FINISHED
      const run = (await get().getRun(v.runId!))!;
      expect(run).toMatchObject({ experimentName: 'fl-model-packages', status: 'FINISHED' });
    });

    it('mlflow: two versions under one given run do not share a folder', async () => {
      const reg = get();
      const { runId } = await reg.startRun({ experimentName: 'exp', runName: 'parent' });
      const a = await reg.createVersion('mlp', [{ path: 'w.bin', data: Buffer.from('A') }], { runId });
      const b = await reg.createVersion('mlp', [{ path: 'w.bin', data: Buffer.from('B') }], { runId });
      expect(a.source).toMatch(new RegExp(`/${runId}/artifacts/model$`));
      expect(b.source).toMatch(new RegExp(`/${runId}/artifacts/model-[0-9a-f]{8}$`));
      expect((await reg.downloadArtifacts('mlp', a.version))[0].data.toString()).toBe('A');
      expect((await reg.downloadArtifacts('mlp', b.version))[0].data.toString()).toBe('B');
    });

    it('mlflow: createVersion under a missing run, or a run whose artifacts are not proxied, fails before registering', async () => {
      const reg = get();
      const before = (await reg.searchVersions({ name: 'mlp' })).length;
      await expect(reg.createVersion('mlp', [{ path: 'w', data: Buffer.from('x') }], { runId: '0123456789abcdef0123456789abcdef' })).rejects.toThrow(
        /Run '0123456789abcdef0123456789abcdef' does not exist/,
      );
      const { runId } = await reg.startRun({ experimentName: 'exp', runName: 's3-run' });
      fake.state.runs.get(runId)!.info.artifact_uri = `s3://bucket/1/${runId}/artifacts`;
      await expect(reg.createVersion('mlp', [{ path: 'w', data: Buffer.from('x') }], { runId })).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
        message: expect.stringMatching(/scheme 's3:'.*--serve-artifacts/),
      });
      expect((await reg.searchVersions({ name: 'mlp' })).length).toBe(before);
    });

    it('mlflow: a runs:/<run>/<path> source (returned unresolved by get-download-uri) is resolved through runs/get', async () => {
      const reg = get();
      const { runId } = await reg.startRun({ experimentName: 'exp', runName: 'logged-elsewhere' });
      const run = fake.state.runs.get(runId)!;
      const root = run.info.artifact_uri.slice('mlflow-artifacts:/'.length);
      fake.state.artifacts.set(`${root}/model/MLmodel`, Buffer.from('flavors: {}'));
      fake.state.artifacts.set(`${root}/model/data/w.bin`, Buffer.from([0, 1, 2, 255]));
      fake.state.artifacts.set(`${root}/other.txt`, Buffer.from('not part of the model'));
      await reg.createModel('runs-src');
      // registered as other MLflow clients do: straight through the REST API
      const res = await fetch(`${fake.url}/api/2.0/mlflow/model-versions/create`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'runs-src', source: `runs:/${runId}/model`, run_id: runId }),
      });
      expect(await res.json()).toMatchObject({ model_version: { version: '1', source: `runs:/${runId}/model`, status: 'READY' } });
      const files = await reg.downloadArtifacts('runs-src', 1);
      expect(files.map((f) => [f.path, f.data.toString('hex')])).toEqual([
        ['MLmodel', Buffer.from('flavors: {}').toString('hex')],
        ['data/w.bin', '000102ff'],
      ]);
      // the host form of mlflow-artifacts URIs reads through the configured server too
      const hostForm = await fetch(`${fake.url}/api/2.0/mlflow/model-versions/create`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'runs-src', source: `mlflow-artifacts://elsewhere:5000/${root}/model` }),
      });
      expect(hostForm.status).toBe(200);
      expect((await reg.downloadArtifacts('runs-src', 2)).map((f) => f.path)).toEqual(['MLmodel', 'data/w.bin']);
    });

    it('mlflow: a source this backend cannot read gives a clear INVALID_ARGUMENT naming the scheme', async () => {
      const reg = get();
      await fetch(`${fake.url}/api/2.0/mlflow/model-versions/create`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'runs-src', source: 's3://bucket/models/x' }),
      });
      const err = await reg.downloadArtifacts('runs-src', 3).catch((e) => e);
      expect(err).toMatchObject({ code: 'INVALID_ARGUMENT' });
      expect(err.message).toMatch(/'s3:'/);
      expect(err.message).toContain('s3://bucket/models/x');
      await fetch(`${fake.url}/api/2.0/mlflow/model-versions/create`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'runs-src', source: 'runs:/0123456789abcdef0123456789abcdef/model' }),
      });
      await expect(reg.downloadArtifacts('runs-src', 4)).rejects.toThrow(/Run '0123456789abcdef0123456789abcdef' does not exist/);
    });

    it('mlflow: model names as MLflow allows them (spaces, slashes, quotes) work, including search by name', async () => {
      const reg = get();
      for (const name of ['My Model', "o'brien/v2"]) {
        await reg.createModel(name);
        const v = await reg.createVersion(name, [{ path: 'm', data: Buffer.from(name) }], { tags: { k: 'v' } });
        expect((await reg.searchVersions({ name })).map((x) => [x.name, x.version])).toEqual([[name, v.version]]);
        expect((await reg.downloadArtifacts(name, 1))[0].data.toString()).toBe(name);
      }
      await expect(reg.createModel('x'.repeat(257))).rejects.toThrow(/Invalid model name/);
      await expect(reg.createModel('a\nb')).rejects.toThrow(/Invalid model name/);
    });

    it('mlflow: listModels and searchVersions follow next_page_token', async () => {
      fake.requests.length = 0;
      const models = await get().listModels();
      expect(models.length).toBeGreaterThan(4);
      expect(models.map((m) => m.name)).toEqual([...models.map((m) => m.name)].sort());
      const pages = fake.requests.filter((r) => r.path.endsWith('/registered-models/search'));
      expect(pages.length).toBe(Math.ceil(models.length / 2));
      expect(pages.slice(1).every((r) => r.query.includes('page_token='))).toBe(true);
      fake.requests.length = 0;
      const versions = await get().searchVersions({ name: 'conc' });
      expect(versions.map((v) => v.version)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
      expect(fake.requests.filter((r) => r.path.endsWith('/model-versions/search')).length).toBe(4);
    });

    it('mlflow: publishing the same package twice gives the same version and uploads nothing the second time', async () => {
      const reg = get();
      const files = { 'model.onnx': Buffer.from('g'), 'weights.safetensors': Buffer.from('w') };
      const first = await publishModelPackage(reg, 'twice', files, { use_case: 'iris' });
      fake.requests.length = 0;
      const second = await publishModelPackage(reg, 'twice', files, { use_case: 'iris' });
      expect(second).toEqual({ version: first.version, created: false });
      expect(fake.requests.some((r) => r.method === 'PUT' || r.path.endsWith('/model-versions/create'))).toBe(false);
    });

    it('mlflow: runs carry mlflow.runName / mlflow.parentRunId; system tags stay out of RunInfo.tags', async () => {
      const reg = get();
      const { runId: parent } = await reg.startRun({ experimentName: 'tracking', runName: 'test_run' });
      const { runId: child } = await reg.startRun({ experimentName: 'tracking', runName: 'site-1', parentRunId: parent, tags: { node: 'site-1' } });
      const raw = fake.state.runs.get(child)!;
      expect(raw.info.run_name).toBe('site-1');
      expect(raw.tags.get('mlflow.parentRunId')).toBe(parent);
      expect(raw.tags.get('mlflow.runName')).toBe('site-1');
      const info = (await reg.getRun(child))!;
      expect(info.tags).toEqual({ node: 'site-1' });
      expect(info).toMatchObject({ runName: 'site-1', parentRunId: parent, experimentName: 'tracking' });
      // the experiment was created once and is found by name afterwards
      expect([...fake.state.experiments.values()].filter((e) => e.name === 'tracking')).toHaveLength(1);
      await reg.endRun(parent, 'KILLED');
      expect(fake.state.runs.get(parent)!.info.status).toBe('KILLED');
    });

    it('mlflow: an experiment created concurrently elsewhere (RESOURCE_ALREADY_EXISTS) is looked up again', async () => {
      fake.requests.length = 0;
      const other = new MlflowModelRegistry({ trackingUri: fake.url });
      const mine = new MlflowModelRegistry({ trackingUri: fake.url });
      // both miss get-by-name, both try to create: one gets RESOURCE_ALREADY_EXISTS
      const [a, b] = await Promise.all([
        other.startRun({ experimentName: 'raced', runName: 'a' }),
        mine.startRun({ experimentName: 'raced', runName: 'b' }),
      ]);
      expect([...fake.state.experiments.values()].filter((e) => e.name === 'raced')).toHaveLength(1);
      expect(fake.requests.filter((r) => r.path.endsWith('/experiments/create')).map((r) => r.status).sort()).toEqual([200, 400]);
      expect(fake.state.runs.get(a.runId)!.info.experiment_id).toBe(fake.state.runs.get(b.runId)!.info.experiment_id);
    });

    it('mlflow: aliases can be removed again (DELETE with a JSON body)', async () => {
      const reg = get();
      await reg.setAlias('mlp', 'staging', 1);
      await reg.deleteAlias('mlp', 'staging');
      expect(await reg.getVersionByAlias('mlp', 'staging')).toBeNull();
      await expect(reg.setAlias('mlp', 'v3', 1)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('reserved') });
    });
  },
);
