import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { InferenceSession, Tensor } from 'onnxruntime-node';
import { mkdirSync, writeFileSync } from 'node:fs';
import { bundledDataDir, formatCsv, getUseCase, partitionTable, readCsvFile, toLabeledData } from '@fl/datasets';
import { Platform } from './support/platform';

const FIXTURES = join(__dirname, '..', 'libs', 'models', 'test', 'fixtures');

/**
 * Models designed in PyTorch and exported by torch.onnx.export
 * (libs/models/test/fixtures/): a 4-16-8-3 MLP trained federatedly on iris by
 * three edge workers, and a small CNN (two convolutions, max pooling, a linear
 * layer) on the 8x8 images of digits by three others, each imported with the
 * CLI and driven through the REST API like any other task.
 */
describe('an imported ONNX model trains federatedly', () => {
  const platform = new Platform();

  beforeAll(async () => {
    await platform.start({ sites: 3, coordinators: 1, coordinatorEnv: { WORKER_WAIT_S: '2' } });
  }, 120_000);

  afterAll(async () => {
    await platform.stop();
  }, 60_000);

  it('a graph that does not fit the use case is refused with its reason and publishes nothing', async () => {
    const failed = platform.cli('models', 'import', join(FIXTURES, 'torch_cnn.onnx'), '--use-case', 'iris', '--loss', 'softmax_cross_entropy', '--json');
    await expect(failed).rejects.toMatchObject({
      code: 1,
      stderr: expect.stringContaining(`the graph's input "x" is [N, 1, 8, 8], 64 values per example, but use case 'iris' has 4 model inputs`),
    });
    const usage = platform.cli('models', 'import', join(FIXTURES, 'torch_mlp.onnx'), '--use-case', 'iris', '--loss', 'hinge');
    await expect(usage).rejects.toMatchObject({ code: 2, stderr: expect.stringContaining(`unknown loss 'hinge'`) });
    expect((await platform.fetch('GET', '/models')).body).toEqual([]);
  });

  it('models import publishes the package; a task on it succeeds with accuracy >= 0.9 and registers the trained model', async () => {
    const file = join(FIXTURES, 'torch_mlp.onnx');
    const args = ['models', 'import', file, '--use-case', 'iris', '--loss', 'softmax_cross_entropy', '--optimizer', 'momentum', '--name', 'torch_mlp_iris', '--json'];
    const model = JSON.parse(await platform.cli(...args));
    expect(model).toEqual({ name: 'torch_mlp_iris', version: 1 });
    // the same file again is the same package: no second version
    expect(JSON.parse(await platform.cli(...args))).toEqual(model);
    const published = await platform.fetch('GET', '/models/torch_mlp_iris/versions/1');
    expect(published.status).toBe(200);
    expect(published.body.tags).toMatchObject({ use_case: 'iris' });

    const created = await platform.fetch('POST', '/tasks/', {
      user_id: '1',
      use_case: 'iris',
      model_name: model.name,
      model_version: model.version,
      num_global_iterations: 5,
      run_name: 'imported_mlp',
      experiment_name: 'Default',
      local_epochs: 5,
      batch_size: 8,
      learning_rate: 0.05,
    });
    expect(created.status).toBe(200);
    const task = await platform.taskWhen(created.body.id, ['success', 'failed', 'cancelled'], 90_000);
    expect(task.reason).toBeNull();
    expect(task.status).toBe('success');
    expect(task.metrics.eval_accuracy).toBeGreaterThanOrEqual(0.9);
    expect(task.result_model_name).toBe('trained_torch_mlp_iris');

    const rounds = (await platform.fetch('GET', `/tasks/${task.id}/rounds`)).body;
    expect(rounds.map((r: any) => r.round)).toEqual([1, 2, 3, 4, 5]);
    for (const r of rounds) expect(r).toMatchObject({ participants: 3, examples: 120, eval_examples: 30 });
    expect(rounds[4].eval_loss).toBeLessThan(rounds[0].eval_loss);

    // The registered model is an imported package too: its inference graph takes
    // raw measurements (the normalisation is inside) and the trained weights.
    const dir = join(platform.artifactDir, 'trained_torch_mlp_iris', String(task.result_model_version));
    const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
    expect(manifest).toMatchObject({ format: 'fl-model-package/2', name: 'trained_torch_mlp_iris', optimizer: 'sgd_momentum', prediction: { name: 'logits', width: 3 } });
    const weights = readFileSync(join(dir, 'weights.safetensors'));
    const headerLen = Number(weights.readBigUInt64LE(0));
    const header = JSON.parse(weights.subarray(8, 8 + headerLen).toString('utf8'));
    const feeds: Record<string, Tensor> = {};
    for (const [name, t] of Object.entries<any>(header)) {
      if (name === '__metadata__') continue;
      const [begin, end] = t.data_offsets;
      const bytes = weights.subarray(8 + headerLen + begin, 8 + headerLen + end);
      feeds[name] = new Tensor('float32', new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length)), t.shape);
    }
    expect(Object.keys(feeds).sort()).toEqual(manifest.parameters.map((p: { name: string }) => p.name).sort());
    const iris = toLabeledData(readCsvFile(join(bundledDataDir(), 'iris.csv')), getUseCase('iris'));
    feeds.x = new Tensor('float32', iris.x, [iris.n, 4]);
    const session = await InferenceSession.create(readFileSync(join(dir, 'inference.onnx')));
    try {
      const logits = (await session.run(feeds)).logits.data as Float32Array;
      let correct = 0;
      for (let i = 0; i < iris.n; i++) {
        const row = Array.from(logits.subarray(i * 3, i * 3 + 3));
        if (row.indexOf(Math.max(...row)) === iris.labels[i]) correct++;
      }
      expect(correct / iris.n).toBeGreaterThanOrEqual(0.9);
    } finally {
      await session.release();
    }
  }, 120_000);

  /*
   * Measured here with these settings: held-out accuracy 0.36, 0.80, 0.88, 0.91, 0.91 in rounds 1 to 5
   * (the same in one process with other seeds: 0.91-0.92 after 5 rounds); chance is 0.1. Plain SGD at
   * the use case's learning rate (0.1) reached 0.19 in 5 rounds of 2 local epochs: the sigmoid layer
   * needs momentum or a larger rate (SGD at 1.0: 0.92).
   */
  it('the digits CNN imported for digits trains federatedly on three sites to held-out accuracy >= 0.8', async () => {
    const shards = partitionTable(readCsvFile(join(bundledDataDir(), 'digits.csv')), 3, 7, 'iid');
    for (const [i, shard] of shards.entries()) {
      const dir = join(platform.dir, `digits-${i + 1}`);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'digits.csv'), formatCsv(shard.header, shard.rows));
      await platform.startSite(`digits-${i + 1}`, dir);
    }
    await platform.until('three edge workers serve digits', async () => {
      const nodes = (await platform.fetch('GET', '/nodes')).body as { status: string; use_cases: string[] }[];
      return nodes.filter((n) => n.status === 'online' && n.use_cases.includes('digits')).length === 3;
    });

    const args = ['models', 'import', join(FIXTURES, 'torch_cnn.onnx'), '--use-case', 'digits', '--loss', 'softmax_cross_entropy', '--optimizer', 'momentum', '--name', 'torch_cnn_digits', '--json'];
    const model = JSON.parse(await platform.cli(...args));
    expect(model).toEqual({ name: 'torch_cnn_digits', version: 1 });
    const created = await platform.fetch('POST', '/tasks/', {
      user_id: '1',
      use_case: 'digits',
      model_name: model.name,
      model_version: model.version,
      num_global_iterations: 5,
      run_name: 'imported_cnn',
      experiment_name: 'Default',
      min_fit_clients: 3,
      local_epochs: 3,
      batch_size: 16,
      learning_rate: 0.1,
    });
    expect(created.status).toBe(200);
    const task = await platform.taskWhen(created.body.id, ['success', 'failed', 'cancelled'], 90_000);
    expect(task.reason).toBeNull();
    expect(task.status).toBe('success');
    expect(task.result_model_name).toBe('trained_torch_cnn_digits');
    const rounds = (await platform.fetch('GET', `/tasks/${task.id}/rounds`)).body;
    expect(rounds.map((r: any) => r.participants)).toEqual([3, 3, 3, 3, 3]);
    // every row of digits is held out by one site or trained on by one
    for (const r of rounds) expect(r.examples + r.eval_examples).toBe(1797);
    expect(rounds[4].eval_loss).toBeLessThan(rounds[0].eval_loss);
    expect(task.metrics.eval_accuracy).toBeGreaterThanOrEqual(0.8);
  }, 120_000);
});
