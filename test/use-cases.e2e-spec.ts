import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bundledDataDir, builtInUseCasesDir, formatCsv, partitionTable, readCsvFile } from '@fl/datasets';
import { Platform } from './support/platform';

/**
 * Use cases by configuration, against the compiled apps: an admin adds one at
 * the gateway (stored in the database), the CLI publishes its default model,
 * and an edge worker serves it from its USE_CASES_DIR while refusing, with the
 * reason shown in GET /nodes, a use case its data does not fit.
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
});
