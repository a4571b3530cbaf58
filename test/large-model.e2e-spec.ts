import { DataSource } from 'typeorm';
import { findUseCase } from '@fl/datasets';
import { modelPackageFiles } from '@fl/models';
import { createDataSource } from '@fl/persistence';
import { LocalModelRegistry, publishModelPackage } from '@fl/registry';
import { defaultModelPackage } from '@fl/runtime';
import { Platform } from './support/platform';

/**
 * Size of the model under test: 128 MiB in the suite; `npm run bench -- large-model` runs this
 * test with 1 GiB (FL_LARGE_MODEL_MB=1024), which takes about 10 minutes here.
 */
const MODEL_BYTES = Number(process.env.FL_LARGE_MODEL_MB ?? 128) * 1024 * 1024;
const GiB = 1024 ** 3;
/**
 * The strategies run, one task each in a fresh coordinator, and how many
 * times the model each may hold beside the process's own memory and the
 * chunks in flight: FedAvg the sum and the update being folded (the global
 * weights are let go), 3 as the issue asks; FedAdam also the global weights
 * (its step needs them) and its state, two float32 buffers (2 x), 5, and 1 for
 * the transfers' chunks and the checkpoint's pieces in flight; FedMedian the
 * update being received (the others on disk), then the median and its
 * encoding while the new weights go out, 3, and 1 as FedAdam; QFedAvg and
 * FedAvg with central differential privacy the global weights, a float64 sum
 * (2 x) and the update being added, 4, and 1 as FedAdam. Measured with
 * 128 MiB: 2.8 to 3.1, 6.3 (7.8 to 8.1 while its state was float64), 3.0,
 * 4.8 to 5.2 and 4.7 x above the start.
 * FL_LARGE_MODEL_STRATEGIES picks some (`npm run bench -- large-model` runs
 * FedAvg alone by default).
 */
const CASES: Record<string, { strategy: string; privacy?: Record<string, unknown>; bound: number }> = {
  FedAvg: { strategy: 'FedAvg', bound: 3 },
  FedAdam: { strategy: 'FedAdam', bound: 6 },
  FedMedian: { strategy: 'FedMedian', bound: 4 },
  QFedAvg: { strategy: 'QFedAvg', bound: 5 },
  // Central DP: clipped differences summed in float64, noise drawn for every value.
  'FedAvg+DP': { strategy: 'FedAvg', privacy: { mode: 'central', noise_multiplier: 0.1, clipping_norm: 1, delta: 1e-5 }, bound: 5 },
};
const STRATEGIES = (process.env.FL_LARGE_MODEL_STRATEGIES ?? Object.keys(CASES).join(',')).split(',').map((name) => {
  if (!CASES[name]) throw new Error(`FL_LARGE_MODEL_STRATEGIES: no case '${name}' (one of ${Object.keys(CASES).join(', ')})`);
  return name;
});
/** Per strategy: 15 minutes, and 25 for 1 GiB: about 11 minutes here, on a loaded machine. */
const TIMEOUT_MS = Math.max(900_000, (MODEL_BYTES / 2 ** 20) * 1500);

/**
 * A model of 1 GiB (or as FL_LARGE_MODEL_MB says; iris's MLP with two hidden layers of about 16 K units:
 * 268 M float32 parameters, almost all in the square middle layer) through 2
 * rounds with 3 workers over RabbitMQ and PostgreSQL. The workers skip the
 * training step (TRAINING=skip: they send back the weights they got), so
 * this is a test of transfer, aggregation and checkpoints: the package and
 * the weights travel in chunks, three updates of 1 GiB arrive at once, and
 * each round's checkpoint goes into PostgreSQL in pieces. The coordinator's
 * peak resident memory (VmHWM) must stay under the strategy's bound times the
 * model's size (CASES: 3 x for FedAvg): the whole of it from 1 GiB on; below
 * that, where the process's own 130 MiB and the chunks in flight weigh as much
 * as the model, its growth during the task, less those chunks (FedAvg with
 * 128 MiB: 0.47 GiB, 3.7 x the model in all, 2.7 x above the 130 MiB before
 * the task). LARGE_MODEL_BYTES is lowered so that the suite's smaller model
 * takes the same path.
 */
describe(`a model of ${MODEL_BYTES / 2 ** 20} MiB`, () => {
  const platform = new Platform();
  let sql: DataSource;
  const hidden = Math.floor(Math.sqrt(MODEL_BYTES / 4));

  beforeAll(async () => {
    process.env.TRAINING = 'skip'; // the edge workers inherit it (the other apps have no such setting)
    await platform.start({ sites: 3, coordinators: 1, coordinatorEnv: { WORKER_WAIT_S: '10', LARGE_MODEL_BYTES: String(Math.min(MODEL_BYTES / 2, 256 * 1024 * 1024)) } });
    sql = createDataSource({ url: platform.databaseUrl, poolSize: 1 });
    await sql.initialize();
    const iris = findUseCase('iris')!;
    const pkg = defaultModelPackage({ ...iris, name: 'iris_large', model: { ...iris.model, hidden: [hidden, hidden] } });
    const registry = new LocalModelRegistry(sql, platform.artifactDir);
    await registry.createModel('iris_large', { description: 'a large model', tags: { use_case: 'iris' } });
    await publishModelPackage(registry, 'iris_large', modelPackageFiles(pkg), { use_case: 'iris' });
  }, 300_000);

  afterAll(async () => {
    await sql?.destroy();
    await platform.stop();
  }, 60_000);

  /** An app's longest event-loop delay since the last scrape of its metrics, in seconds. */
  async function longestStall(app: string): Promise<number> {
    const text = await (await fetch(`http://127.0.0.1:${platform.healthPorts[app]}/metrics`)).text();
    const m = /^fl_nodejs_eventloop_lag_max_seconds(?:\{[^}]*\})? (\S+)$/m.exec(text);
    if (!m) throw new Error(`${app} reports no fl_nodejs_eventloop_lag_max_seconds`);
    return Number(m[1]);
  }

  it.each(STRATEGIES)('runs 2 rounds of %s with 3 workers, the coordinator holding the model at most as many times as the strategy needs', async (strategy) => {
    const { strategy: name, privacy, bound: times } = CASES[strategy];
    if (strategy !== STRATEGIES[0]) {
      // A fresh coordinator for each strategy: one that ran a task keeps much of its heap, and its peak would not be this task's.
      await platform.kill('coordinator-1', 'SIGTERM');
      platform.restart('coordinator-1');
      await platform.until('the coordinator is ready', async () => {
        try {
          return (await fetch(`http://127.0.0.1:${platform.healthPorts['coordinator-1']}/health/ready`)).status === 200;
        } catch {
          return false;
        }
      });
    }
    const before = platform.memory('coordinator-1').rss;
    const apps = ['coordinator-1', 'site-1', 'site-2', 'site-3'];
    const cpuBefore = apps.map((app) => platform.cpuSeconds(app));
    // The longest stall of each app's event loop is measured from this scrape on (each scrape starts it over).
    await Promise.all(apps.map(longestStall));
    const startedAt = performance.now();
    const created = await platform.fetch('POST', '/tasks', {
      user_id: '1', use_case: 'iris', model_name: 'iris_large', model_version: 1, num_global_iterations: 2, strategy: name, ...(privacy ? { privacy } : {}),
      run_name: `large_${name}${privacy ? '_dp' : ''}`, experiment_name: 'Default', min_fit_clients: 3, local_epochs: 1, round_timeout_s: TIMEOUT_MS / 1000,
    });
    expect(created.status).toBe(200);
    const task = await platform.taskWhen(created.body.id, ['success', 'failed', 'cancelled'], TIMEOUT_MS);
    const { peak } = platform.memory('coordinator-1');
    const seconds = (performance.now() - startedAt) / 1000;
    const cpu = apps.map((app, i) => platform.cpuSeconds(app) - cpuBefore[i]);
    const [stall, ...workerStalls] = await Promise.all(apps.map(longestStall));
    const [{ bytes }] = await platform.query<{ bytes: string }>(
      `SELECT sum(length(k.data)) AS bytes FROM coordinator.checkpoint_chunks k JOIN coordinator.checkpoints c USING (task_id, round)
       WHERE task_id = $1 AND round = 2 AND k.index < c.pieces`, [task.id],
    );
    console.log(
      `${strategy}, model ${(MODEL_BYTES / GiB).toFixed(2)} GiB (hidden ${hidden}): coordinator peak RSS ${(peak / GiB).toFixed(2)} GiB = ` +
        `${(peak / MODEL_BYTES).toFixed(2)} x the model (${((peak - before) / MODEL_BYTES).toFixed(2)} x above its ${(before / 2 ** 20).toFixed(0)} MiB before the task); ` +
        `round-2 checkpoint ${(Number(bytes) / GiB).toFixed(2)} GiB in pieces; task ${seconds.toFixed(1)} s, CPU time coordinator ` +
        `${cpu[0].toFixed(1)} s, workers ${cpu.slice(1).map((c) => c.toFixed(1)).join(' / ')} s; coordinator's event loop held ${stall.toFixed(2)} s at most, ` +
        `the workers' ${workerStalls.map((s) => s.toFixed(2)).join(' / ')} s`,
    );
    expect(task.reason).toBeNull();
    expect(task.status).toBe('success');
    expect(Number(bytes)).toBeGreaterThan(MODEL_BYTES * 0.99);
    // Beside the model, the coordinator holds up to 8 prefetched chunks of 16 MiB (1x of the suite's model, little of 1 GiB),
    // and its own heap moves with the collector's timing: on one machine the same code peaked from 5.0 to 6.1 x above its
    // start with central DP, over five runs. With --single-threaded-gc (the services' node flags) released buffers linger
    // longer between collections: QFedAvg and central DP peaked 5.35 to 6.36 x above the start over five runs each, against
    // 5.0 to 5.2 x in two runs each without the flag (at 1 GiB QFedAvg stays at 4.37 x). Hence 256 MiB; from 1 GiB on, the bound
    // below is the whole of it.
    expect(peak - before).toBeLessThan(times * MODEL_BYTES + 256 * 2 ** 20);
    if (MODEL_BYTES >= GiB) expect(peak).toBeLessThan(times * MODEL_BYTES);
  }, TIMEOUT_MS + 60_000);
});
