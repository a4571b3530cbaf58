import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bundledDataDir, formatCsv, loadSiteData, partitionTable, readCsvFile } from '@fl/datasets';
import { addFeatureSums, featureSums, standardization } from '@fl/models';
import { Platform } from './support/platform';

/**
 * breast_cancer standardises its 30 measurements with statistics computed
 * federatedly before round 1: each site sends counts, sums and sums of squares
 * of its training rows; the coordinator stores mean and std with the task and
 * ships them in the trained model's manifest and graphs.
 */
describe('federated standardisation statistics (breast_cancer, 3 sites)', () => {
  const platform = new Platform();
  const sites = ['site-1', 'site-2', 'site-3'];
  const dirs: string[] = [];

  beforeAll(async () => {
    await platform.provision();
    await platform.startGateway();
    await platform.startCoordinators(1);
    const shards = partitionTable(readCsvFile(join(bundledDataDir(), 'breast_cancer.csv')), 3, 11, 'iid');
    for (const [i, name] of sites.entries()) {
      const dir = join(platform.dir, `${name}-data`);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'breast_cancer.csv'), formatCsv(shards[i].header, shards[i].rows));
      dirs.push(dir);
      await platform.startSite(name, dir);
    }
    await platform.sitesOnline(3);
  }, 120_000);

  afterAll(async () => {
    await platform.stop();
  }, 60_000);

  it('computes them from the sites sums, stores them with the task and ships them in the trained model', async () => {
    const model = JSON.parse(await platform.cli('models', 'publish', 'breast_cancer', '--json'));
    const created = await platform.fetch('POST', '/tasks', {
      user_id: '1',
      use_case: 'breast_cancer',
      model_name: model.name,
      model_version: model.version,
      num_global_iterations: 3,
      run_name: 'federated-statistics',
      experiment_name: 'Default',
      min_fit_clients: 3,
    });
    expect(created.status).toBe(200);
    const task = await platform.taskWhen(created.body.id, ['success', 'failed', 'cancelled'], 120_000);
    expect(task.reason).toBeNull();
    expect(task.status).toBe('success');
    // Raw measurements span 0.001 to 2500: unstandardised, this model stays near the majority class (0.63).
    expect(task.metrics.eval_accuracy).toBeGreaterThanOrEqual(0.9);

    // What the statistics must be: the sums of each site's training rows (its split as the worker makes it, seed 0).
    const parts = dirs.map((dir) => {
      const train = loadSiteData(dir, ['breast_cancer'], 0).get('breast_cancer')!.train;
      return featureSums(train.x, train.n, train.features);
    });
    const total = addFeatureSums(parts);
    const want = standardization(total, new Array(30).fill(true));

    const [run] = await platform.query<{ standardization: { mean: number[]; std: number[]; examples: number; sites: number } }>(
      'SELECT standardization FROM coordinator.task_runs WHERE task_id = $1',
      [task.id],
    );
    expect(run.standardization.examples).toBe(total.count);
    expect(run.standardization.sites).toBe(3);
    for (let j = 0; j < 30; j++) {
      expect(run.standardization.mean[j]).toBeCloseTo(want.mean[j], 6);
      expect(run.standardization.std[j]).toBeCloseTo(want.std[j], 6);
    }

    const [version] = await platform.query<{ tags: Record<string, string> }>(`SELECT tags FROM registry.model_versions WHERE name = 'trained_breast_cancer'`);
    expect(version.tags.standardization).toBe(`federated: ${total.count} examples from 3 sites`);
    const dir = join(platform.artifactDir, 'trained_breast_cancer', String(task.result_model_version));
    const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
    expect(manifest.normalization.mean).toEqual(run.standardization.mean);
    expect(manifest.normalization.std).toEqual(run.standardization.std);
    expect(manifest.normalization.statistics).toEqual({
      method: 'federated',
      standardize: new Array(30).fill(true),
      computed: { task_id: task.id, examples: total.count, sites: 3 },
    });
    for (const name of sites) expect(platform.logOf(name)).toContain(`sent the sums of ${parts[sites.indexOf(name)].count} training rows`);
    // The published (untrained) model still waits for a task's statistics.
    const source = JSON.parse(readFileSync(join(platform.artifactDir, model.name, String(model.version), 'manifest.json'), 'utf8'));
    expect(source.normalization.statistics).toEqual({ method: 'federated', standardize: new Array(30).fill(true) });
  }, 180_000);
});
