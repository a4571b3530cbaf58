/** @jest-environment ./libs/models/test/ort-environment.js */
import { INestApplication, Logger } from '@nestjs/common';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Bindings, Msg, Routes } from '@fl/contracts';
import { bundledDataDir, formatCsv, IRIS, partitionTable, readCsvFile } from '@fl/datasets';
import { InboundMessage, InMemoryBus } from '@fl/messaging';
import { loadConfig } from '@fl/runtime';
import { createEdgeWorkerApp } from '../bootstrap';
import { EdgeWorkerConfig } from '../config';
import { canonicalJson, UseCaseDefinitions } from './use-case-definitions';

const PETAL_COLUMNS = ['sl', 'sw', 'pl', 'pw', 'kind'];
/** Iris under another name, with other column names: a use case no file defines. */
const PETALS = {
  ...IRIS,
  name: 'petals',
  description: 'iris with renamed columns',
  features: IRIS.features.map((f, i) => ({ ...f, name: PETAL_COLUMNS[i] })),
  label: { column: 'kind', classes: IRIS.label.classes },
};

/**
 * An edge worker on the in-memory bus learning use cases stored at the
 * gateway: what it serves, refuses and ignores, what it tells the
 * coordinators, and that nothing changes for a definition it must not take.
 */
describe('edge worker: use cases defined at the gateway', () => {
  let dir: string;
  let bus: InMemoryBus;
  const apps: INestApplication[] = [];
  const presence: InboundMessage[] = [];
  const lines: { level: string; message: string }[] = [];

  const iris = partitionTable(readCsvFile(join(bundledDataDir(), 'iris.csv')), 3, 1)[0];
  /** A site folder: a third of iris under its own columns, and the same rows under the petals columns. */
  function siteData(name: string, files: { iris?: boolean; petals?: string[][] } = { iris: true, petals: iris.rows }): string {
    const d = join(dir, name);
    mkdirSync(d);
    if (files.iris) writeFileSync(join(d, 'iris.csv'), formatCsv(iris.header, iris.rows));
    if (files.petals) writeFileSync(join(d, 'petals.csv'), formatCsv(PETAL_COLUMNS, files.petals));
    return d;
  }
  async function startWorker(name: string, dataPath: string, env: Record<string, string> = {}): Promise<INestApplication> {
    const config = loadConfig(EdgeWorkerConfig, { NODE_NAME: name, DATA_PATH: dataPath, HEALTH_PORT: '0', HEARTBEAT_INTERVAL_S: '3600', LOG_FORMAT: 'pretty', ...env });
    const app = await createEdgeWorkerApp(config, bus.asUser(name), false);
    apps.push(app);
    await settled();
    return app;
  }
  /** Hands the worker a definition as its message handler does; returns what came of it once its announcement is delivered. */
  async function receive(app: INestApplication, definition: unknown, from = 'gateway'): Promise<string> {
    const outcome = await app.get(UseCaseDefinitions).receive(definition, from);
    await settled();
    return outcome;
  }
  const announced = (site: string) => presence.filter((m) => m.payload.sender === site && m.name === Msg.NodeRegistered);
  const lastAnnounced = (site: string) => announced(site).at(-1)!.payload;
  async function settled(): Promise<void> {
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  }

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'fl-worker-use-cases-'));
    for (const level of ['log', 'warn', 'error'] as const) {
      jest.spyOn(Logger.prototype, level).mockImplementation(function (message: unknown, ..._context: unknown[]) {
        lines.push({ level, message: String(message) });
      });
    }
  });
  beforeEach(async () => {
    bus = new InMemoryBus({ logger: { log: () => undefined, warn: () => undefined, error: () => undefined } });
    presence.length = 0;
    lines.length = 0;
    await bus.consume({ name: 'coordinators', bindings: ['coordinators.all.#'] }, async (m) => void presence.push(m));
  });
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((a) => a.close()));
    await bus.close();
  });
  afterAll(() => {
    jest.restoreAllMocks();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves a definition its files fit: bound to the use case, announced again; the same definition again changes nothing', async () => {
    const app = await startWorker('site-1', siteData('fit'));
    expect(lastAnnounced('site-1').use_cases).toEqual(['iris']);
    await bus.publish(Routes.allWorkers(Msg.UseCaseDefined), { name: Msg.UseCaseDefined, payload: { task_id: 0, round: 0, sender: 'gateway', definition: PETALS } });
    await waitFor(() => announced('site-1').length === 2);
    // the same rows as its iris file, split the same way as at start-up
    expect(lastAnnounced('site-1')).toMatchObject({ use_cases: ['iris', 'petals'], examples: { iris: { train: 41, test: 9 }, petals: { train: 41, test: 9 } } });
    expect(lastAnnounced('site-1').rejected_use_cases).toBeUndefined();
    expect(lines).toContainEqual({ level: 'log', message: expect.stringContaining("serving use case 'petals' (defined at the gateway, from gateway): 41 training and 9 held-out rows") });

    // the queue now takes the use case's round broadcasts (an unknown message name is dead-lettered: proof it arrived)
    await bus.publish(Routes.useCaseWorkers('petals', Msg.RoundFit), { name: 'probe', payload: {} });
    await waitFor(() => bus.deadLetters.length === 1);
    expect(bus.deadLetters[0]).toMatchObject({ queue: 'fl.worker.site-1', message: { routingKey: 'workers.petals.round.fit' } });

    // a coordinator sends it again as jsonb returns it (keys in another order): known, nothing happens
    const reordered = JSON.parse(canonicalJson(PETALS));
    await bus.publish(Routes.worker('site-1', Msg.UseCaseDefined), { name: Msg.UseCaseDefined, payload: { task_id: 0, round: 0, sender: 'coordinator-1', definition: reordered } });
    await settled();
    expect(await receive(app, PETALS)).toBe('known');
    expect(announced('site-1')).toHaveLength(2);
    expect(bus.deadLetters).toHaveLength(1);
  });

  it('changes nothing for an invalid definition, one that conflicts with a file or with a definition it serves, or one whose columns no file has', async () => {
    const app = await startWorker('site-1', siteData('conflicts'));
    const definitions = { receive: (d: unknown, from: string) => receive(app, d, from) };
    const before = lastAnnounced('site-1');
    const invalid = { ...PETALS, features: [{ name: 'sl', type: 'text' }] };
    expect(await definitions.receive(invalid, 'gateway')).toBe('invalid');
    expect(lines).toContainEqual({ level: 'error', message: expect.stringMatching(/^refusing the definition of use case 'petals' from gateway, nothing changed: .*features\[0\]\.type: must be 'number' or 'categorical', got 'text'/) });
    expect(await definitions.receive('petals', 'gateway')).toBe('invalid');
    const otherIris = { ...IRIS, description: 'not the file of this site', missing_values: { strategy: 'drop_row' } };
    expect(await definitions.receive(otherIris, 'gateway')).toBe('conflict');
    expect(lines).toContainEqual({ level: 'error', message: expect.stringMatching(/^refusing the definition of use case 'iris' from gateway, nothing changed: this site defines it otherwise in .*iris\.json$/) });
    expect(await definitions.receive(IRIS, 'gateway')).toBe('known');
    const elsewhere = { ...PETALS, name: 'elsewhere', features: PETALS.features.map((f) => ({ ...f, name: `${f.name}_x` })) };
    expect(await definitions.receive(elsewhere, 'gateway')).toBe('no-data');
    await settled();
    expect(announced('site-1')).toHaveLength(1);
    expect(lastAnnounced('site-1')).toEqual(before);
    expect(await bus.publish(Routes.useCaseWorkers('elsewhere', Msg.RoundFit), { name: 'probe', payload: {} })).toBeUndefined();
    await settled();
    expect(bus.deadLetters).toHaveLength(0);

    // served by a first definition, a second one of the same name is refused and the first stays
    expect(await definitions.receive(PETALS, 'gateway')).toBe('served');
    const changed = { ...PETALS, description: 'changed' };
    expect(await definitions.receive(changed, 'coordinator-1')).toBe('conflict');
    expect(lines).toContainEqual({ level: 'error', message: "refusing a second definition of use case 'petals' from coordinator-1, nothing changed: this site serves it by the first one it received" });
    expect(lastAnnounced('site-1').use_cases).toEqual(['iris', 'petals']);
  });

  it("refuses, with the reason it reports, a definition whose columns its files have but whose values they do not fit", async () => {
    const rows = iris.rows.map((r, i) => (i === 3 ? [...r.slice(0, 4), 'Iris-nova'] : r));
    const data = siteData('misfit', { iris: true, petals: rows });
    const app = await startWorker('site-2', data);
    expect(await receive(app, PETALS)).toBe('refused');
    const reason = `${join(data, 'petals.csv')}:5: unknown class 'Iris-nova' (expected one of Iris-setosa, Iris-versicolor, Iris-virginica)`;
    expect(lastAnnounced('site-2')).toMatchObject({ use_cases: ['iris'], rejected_use_cases: { petals: reason } });
    expect(lines).toContainEqual({ level: 'error', message: `refusing use case 'petals': ${reason}` });
    await bus.publish(Routes.useCaseWorkers('petals', Msg.RoundFit), { name: 'probe', payload: {} });
    await settled();
    expect(bus.deadLetters).toHaveLength(0);
  });

  it('takes only the use cases USE_CASES names; one it named but did not know is served once its definition arrives', async () => {
    const only = await startWorker('site-3', siteData('only-iris'), { USE_CASES: 'iris' });
    expect(await receive(only, PETALS)).toBe('not-requested');
    expect(lastAnnounced('site-3').use_cases).toEqual(['iris']);
    expect(announced('site-3')).toHaveLength(1);

    const named = await startWorker('site-4', siteData('named'), { USE_CASES: 'iris,petals' });
    expect(lastAnnounced('site-4')).toMatchObject({ use_cases: ['iris'], rejected_use_cases: { petals: expect.stringMatching(/^unknown use case at this site/) } });
    expect(await receive(named, PETALS)).toBe('served');
    expect(lastAnnounced('site-4').use_cases).toEqual(['iris', 'petals']);
    expect(lastAnnounced('site-4').rejected_use_cases).toBeUndefined();
  });

  it('starts on files that fit no known use case yet, and serves the use case once it is defined', async () => {
    const app = await startWorker('site-5', siteData('only-petals', { petals: iris.rows }));
    expect(lastAnnounced('site-5')).toMatchObject({ use_cases: [], examples: {} });
    expect(lines).toContainEqual({ level: 'warn', message: expect.stringContaining('has the columns of a known use case: serving none until one that fits is added at the gateway') });
    expect(await receive(app, PETALS)).toBe('served');
    expect(lastAnnounced('site-5').use_cases).toEqual(['petals']);
  });

  it('refuses, changing nothing else, a use case whose binding the broker refuses, and tries again when the definition comes again', async () => {
    const app = await startWorker('site-6', siteData('refused-binding'));
    const addBinding = jest.spyOn(bus, 'addBinding').mockRejectedValueOnce(new Error('ACCESS_REFUSED'));
    expect(await receive(app, PETALS)).toBe('refused');
    expect(lastAnnounced('site-6')).toMatchObject({ use_cases: ['iris'], rejected_use_cases: { petals: "cannot receive the use case's rounds: ACCESS_REFUSED" } });
    expect(await receive(app, PETALS, 'coordinator-1')).toBe('served');
    expect(addBinding).toHaveBeenLastCalledWith('fl.worker.site-6', Bindings.useCaseWorkers('petals'));
    expect(lastAnnounced('site-6').use_cases).toEqual(['iris', 'petals']);
  });
});

async function waitFor(predicate: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
}
