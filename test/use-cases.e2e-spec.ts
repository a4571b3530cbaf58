import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bundledDataDir, builtInUseCasesDir, formatCsv, partitionTable, readCsvFile } from '@fl/datasets';
import { Platform } from './support/platform';

/**
 * Use cases by configuration, against the compiled apps: an admin adds one at
 * the gateway (stored in the database), the CLI publishes its default model,
 * and an edge worker serves it from its USE_CASES_DIR while refusing, with the
 * reason shown in GET /nodes, a use case its data does not fit. A use case
 * added at the gateway reaches the edge workers over the bus, whether they
 * run when it is added or start later, with the coordinator down meanwhile,
 * and a federated task trains on it.
 */
describe('use cases by configuration', () => {
  const platform = new Platform();
  const iris = JSON.parse(readFileSync(join(builtInUseCasesDir(), 'iris.json'), 'utf8'));
  const flowers = { ...iris, name: 'flowers', description: 'iris under another name, rows with gaps dropped', missing_values: { strategy: 'drop_row' } };
  let viewer: string;

  beforeAll(async () => {
    await platform.provision();
    await platform.startGateway();
    await platform.startCoordinators(1);
    viewer = await platform.issuer.token('vera', ['viewer']);
  }, 120_000);

  afterAll(() => platform.stop(), 60_000);

  it('refuses a bad definition with 400 naming the fields, a viewer with 403, a taken name with 409; stores nothing', async () => {
    const bad = { ...flowers, features: [{ name: 'sepal-length', type: 'text' }], normalization: { method: 'standardize', mean: [1, 2], std: [1] } };
    const res = await platform.fetch('POST', '/use-cases', bad);
    expect(res.status).toBe(400);
    // with a feature's type in error the number of number features is unknown, so mean and std are not counted
    expect(res.body.details).toEqual([{ field: 'features[0].type', reason: "must be 'number' or 'categorical', got 'text'" }]);
    expect(res.body.message).toContain('features[0].type');
    expect((await platform.fetch('POST', '/use-cases', [1, 2])).status).toBe(400);
    expect((await platform.fetch('POST', '/use-cases', flowers, { authorization: `Bearer ${viewer}` })).status).toBe(403);
    const taken = await platform.fetch('POST', '/use-cases', iris);
    expect(taken.status).toBe(409);
    expect(taken.body.details).toEqual([{ field: 'name', reason: 'a use case of that name exists' }]);
    expect(await platform.query('SELECT name FROM gateway.use_cases')).toEqual([]);
  });

  it('stores a valid one, lists it beside the files, and 409s a second time', async () => {
    const created = await platform.fetch('POST', '/use-cases', flowers);
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ name: 'flowers', missing_values: { strategy: 'drop_row', markers: ['', 'NA', 'NaN', '?'] } });
    expect((await platform.fetch('POST', '/use-cases', flowers)).status).toBe(409);
    const list = (await platform.fetch('GET', '/use-cases', undefined, { authorization: `Bearer ${viewer}` })).body as { name: string; origin: string }[];
    expect(list.map((u) => [u.name, u.origin])).toEqual([
      ['breast_cancer', 'file'],
      ['digits', 'file'],
      ['iris', 'file'],
      ['flowers', 'stored'],
    ]);
    expect((await platform.fetch('GET', '/use-cases/flowers')).body).toEqual(created.body);
    expect((await platform.fetch('GET', '/use-cases/nope')).status).toBe(404);
  });

  it('publishes the default model of a stored use case with the CLI', async () => {
    expect(JSON.parse(await platform.cli('models', 'publish', 'flowers', '--json'))).toEqual({ name: 'flowers', version: 1 });
    await expect(platform.cli('models', 'publish', 'heart')).rejects.toThrow(/unknown use case 'heart'/);
  });

  it('an edge worker serves what fits and refuses, with the reason, what does not', async () => {
    const defs = join(platform.dir, 'site-defs');
    mkdirSync(defs, { recursive: true });
    writeFileSync(join(defs, 'flowers.json'), JSON.stringify((await platform.fetch('GET', '/use-cases/flowers')).body));
    const data = join(platform.dir, 'site-data');
    mkdirSync(data, { recursive: true });
    const shard = partitionTable(readCsvFile(join(bundledDataDir(), 'iris.csv')), 3, 1)[0];
    writeFileSync(join(data, 'iris.csv'), formatCsv(shard.header, shard.rows));
    const digitsHeader = readCsvFile(join(bundledDataDir(), 'digits.csv')).header;
    writeFileSync(join(data, 'digits.csv'), formatCsv(digitsHeader, [[...new Array(64).fill('1'), '7'], [...new Array(64).fill('2'), 'seven']]));
    await platform.startSite('site-1', data, { USE_CASES: 'iris,flowers,digits', USE_CASES_DIR: defs });
    let node: any;
    await platform.until('site-1 is online', async () => {
      node = ((await platform.fetch('GET', '/nodes')).body as any[]).find((n) => n.name === 'site-1' && n.status === 'online');
      return node !== undefined;
    });
    expect(node.use_cases.sort()).toEqual(['flowers', 'iris']);
    expect(node.examples.flowers.train + node.examples.flowers.test).toBe(50);
    expect(node.rejected_use_cases).toEqual({ digits: `${join(data, 'digits.csv')}:3: unknown class 'seven' (expected one of 0, 1, 2, 3, 4, 5, 6, 7, 8, 9)` });
    expect(platform.logOf('site-1')).toContain("refusing use case 'digits'");
  });

  it('a stored use case reaches the workers over the bus, before and after they start, across a coordinator restart; a task trains on it', async () => {
    const columns = ['sepal_len', 'sepal_wid', 'petal_len', 'petal_wid', 'species'];
    const petals = {
      ...iris,
      name: 'petals',
      description: 'iris with its columns named otherwise',
      features: iris.features.map((f: object, i: number) => ({ ...f, name: columns[i] })),
      label: { ...iris.label, column: 'species' },
    };
    const shards = partitionTable(readCsvFile(join(bundledDataDir(), 'iris.csv')), 3, 11);
    const petalsSite = (name: string, rows: string[][]) => {
      const dir = join(platform.dir, name);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'petals.csv'), formatCsv(columns, rows));
      return dir;
    };
    const nodes = async () => (await platform.fetch('GET', '/nodes')).body as { name: string; status: string; use_cases: string[]; rejected_use_cases?: Record<string, string> }[];

    // two sites whose files fit no use case yet: they start, serving none
    await platform.startSite('petal-a', petalsSite('petal-a', shards[0].rows));
    await platform.startSite('petal-b', petalsSite('petal-b', shards[1].rows));
    await platform.until('petal-a and petal-b are online, serving nothing', async () => {
      const online = (await nodes()).filter((n) => n.name.startsWith('petal-') && n.status === 'online');
      return online.length === 2 && online.every((n) => n.use_cases.length === 0);
    });

    // the use case is added while no coordinator runs: the running sites hear it from the gateway
    await platform.kill('coordinator-1', 'SIGTERM');
    const created = await platform.fetch('POST', '/use-cases', petals);
    expect(created.status).toBe(201);
    await platform.until('petal-a and petal-b serve petals', async () =>
      ['petal-a', 'petal-b'].every((s) => platform.logOf(s).includes("serving use case 'petals' (defined at the gateway, from gateway)")),
    );
    // and those starting later from a coordinator, once one runs: one that fits, one whose rows do not
    await platform.startSite('petal-c', petalsSite('petal-c', shards[2].rows));
    const misfit = petalsSite('petal-misfit', [...shards[2].rows.slice(0, 5), ['5.0', '3.0', '1.0', '0.2', 'Iris-nova']]);
    await platform.startSite('petal-misfit', misfit);
    platform.restart('coordinator-1');
    await platform.until('three sites serve petals and one refuses it', async () => {
      const all = await nodes();
      const serving = all.filter((n) => n.status === 'online' && n.use_cases.includes('petals')).map((n) => n.name);
      return serving.join() === 'petal-a,petal-b,petal-c' && all.some((n) => n.name === 'petal-misfit' && n.rejected_use_cases?.petals !== undefined);
    });
    const refused = (await nodes()).find((n) => n.name === 'petal-misfit')!;
    expect(refused.use_cases).toEqual([]);
    expect(refused.rejected_use_cases).toEqual({ petals: `${join(misfit, 'petals.csv')}:7: unknown class 'Iris-nova' (expected one of Iris-setosa, Iris-versicolor, Iris-virginica)` });
    expect(platform.logOf('petal-misfit')).toContain("refusing use case 'petals'");
    expect(platform.logOf('petal-c')).toContain("serving use case 'petals' (defined at the gateway, from e2e-coordinator-1)");
    // the site that serves it by files of other columns does not take it
    expect((await nodes()).find((n) => n.name === 'site-1')!.use_cases.sort()).toEqual(['flowers', 'iris']);

    expect(JSON.parse(await platform.cli('models', 'publish', 'petals', '--json'))).toEqual({ name: 'petals', version: 1 });
    const task = await platform.fetch('POST', '/tasks', {
      user_id: '1', use_case: 'petals', model_name: 'petals', model_version: 1, num_global_iterations: 5,
      run_name: 'petals_run', experiment_name: 'Default', min_fit_clients: 3,
    });
    expect(task.status).toBe(200);
    const done = await platform.taskWhen(task.body.id, ['success', 'failed', 'cancelled'], 90_000);
    expect(done.reason).toBeNull();
    expect(done.status).toBe('success');
    const rounds = (await platform.fetch('GET', `/tasks/${done.id}/rounds`)).body as { participants: number }[];
    expect(rounds.map((r) => r.participants)).toEqual([3, 3, 3, 3, 3]);
    expect(done.metrics.eval_accuracy).toBeGreaterThanOrEqual(0.8);
  }, 180_000);
});
