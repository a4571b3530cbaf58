import { Logger } from '@nestjs/common';
import { Bindings, Msg, Routes } from '@fl/contracts';
import { IRIS, modelInputs } from '@fl/datasets';
import { InboundMessage, InMemoryBus } from '@fl/messaging';
import { buildClassifierPackage, encodePackageBundle, encodeSafetensors, modelPackageFiles, sha256Hex } from '@fl/models';
import { loadConfig } from '@fl/runtime';
import { EdgeWorkerConfig } from '../../edge-worker/src/config';
import { SimulatorConfig } from './config';
import { Simulation } from './simulation';

/**
 * Virtual workers on the in-memory bus, spoken to as a coordinator speaks to
 * edge workers: each answers as itself, from its own queue, through the edge
 * worker's own handlers.
 */
describe('Simulation', () => {
  const bus = new InMemoryBus();
  const received: InboundMessage[] = [];
  let simulation: Simulation;
  const from = (name: string, round?: number) => received.filter((m) => m.name === name && (round === undefined || m.payload.round === round));

  const inputs = modelInputs(IRIS);
  const pkg = buildClassifierPackage({ name: 'iris', featureNames: inputs.names, classes: IRIS.label.classes, hidden: [], normalization: { mean: inputs.mean, std: inputs.std }, seed: 0 });
  const bundle = encodePackageBundle(modelPackageFiles(pkg));
  const global = encodeSafetensors(pkg.initialWeights);

  const until = async (what: string, check: () => boolean) => {
    for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
    if (!check()) throw new Error(`timed out waiting for ${what}`);
  };

  const instruction = (name: typeof Msg.RoundFit | typeof Msg.RoundEvaluate, round: number, participants: string[]) => ({
    name,
    payload: {
      task_id: 1,
      round,
      sender: 'test-coordinator',
      use_case: 'iris',
      participants,
      package_sha256: sha256Hex(bundle),
      weights_sha256: sha256Hex(global),
      reply_to: Routes.coordinator('test-coordinator', name === Msg.RoundFit ? Msg.RoundFitResult : Msg.RoundEvaluateResult),
      ...(name === Msg.RoundFit ? { config: { local_epochs: 1, batch_size: 8, learning_rate: 0.1, seed: 1 } } : {}),
    },
    attachment: global,
  });

  beforeAll(async () => {
    Logger.overrideLogger(['error']);
    await bus.consume({ name: 'fl.coordinator.test-coordinator', bindings: Bindings.coordinator('test-coordinator'), prefetch: 16 }, async (m) => void received.push(m));
    simulation = await Simulation.start({
      config: loadConfig(SimulatorConfig, { SIMULATED_WORKERS: '5', SIM_COMPUTE: 'zero', SIM_HOSTILE: 'sim-2:noise:0.5', SIM_WORKERS_PER_CONNECTION: '2' }),
      worker: loadConfig(EdgeWorkerConfig, { NODE_NAME: 'sim', DATA_PATH: 'unused', USE_CASES: 'iris', HEARTBEAT_INTERVAL_S: '3600' }),
      // The simulation closes its connections when it stops; this one is the test's, kept open to hear the goodbyes.
      connect: async () => ({ stats: bus.stats, publish: (k, m) => bus.publish(k, m), consume: (q, h) => bus.consume(q, h), addBinding: (q, b) => bus.addBinding(q, b), close: async () => undefined }),
    });
  });

  afterAll(async () => {
    await simulation?.stop();
    await bus.close();
    Logger.overrideLogger(['log', 'error', 'warn', 'debug', 'verbose', 'fatal']);
  });

  it('registers each virtual worker under its own name, with its own shard of iris', async () => {
    expect(simulation.names).toEqual(['sim-1', 'sim-2', 'sim-3', 'sim-4', 'sim-5']);
    await until('five registrations', () => from(Msg.NodeRegistered).length === 5);
    const registrations = from(Msg.NodeRegistered).map((m) => m.payload as { sender: string; use_cases: string[]; examples: { iris: { train: number; test: number } } });
    expect(registrations.map((r) => r.sender).sort()).toEqual(simulation.names);
    for (const r of registrations) expect(r.use_cases).toEqual(['iris']);
    expect(registrations.reduce((n, r) => n + r.examples.iris.train + r.examples.iris.test, 0)).toBe(150);
  });

  it('answers a fit broadcast from the chosen workers only, each once, as itself; zero compute returns the global weights', async () => {
    for (const node of ['sim-1', 'sim-2', 'sim-3']) {
      await bus.publish(Routes.worker(node, Msg.ModelPackage), { name: Msg.ModelPackage, payload: { task_id: 1, round: 0, sender: 'test-coordinator', package_sha256: sha256Hex(bundle) }, attachment: bundle });
    }
    await bus.publish(Routes.useCaseWorkers('iris', Msg.RoundFit), instruction(Msg.RoundFit, 1, ['sim-1', 'sim-2', 'sim-3']));
    await until('three fit results', () => from(Msg.RoundFitResult, 1).length === 3);
    await new Promise((r) => setTimeout(r, 50));
    const results = from(Msg.RoundFitResult, 1);
    expect(results.map((m) => m.payload.sender).sort()).toEqual(['sim-1', 'sim-2', 'sim-3']);
    for (const m of results) expect(m.payload).toMatchObject({ status: 'ok', train_loss: 0 });
    const bySender = new Map(results.map((m) => [m.payload.sender, m.attachment!]));
    expect(bySender.get('sim-1')!.equals(global)).toBe(true);
    expect(bySender.get('sim-3')!.equals(global)).toBe(true);
    // sim-2 is hostile (noise): same shape, other values.
    expect(bySender.get('sim-2')!.length).toBe(global.length);
    expect(bySender.get('sim-2')!.equals(global)).toBe(false);
  });

  it('keeps each worker its own package cache: one that never received the package says so', async () => {
    await bus.publish(Routes.useCaseWorkers('iris', Msg.RoundEvaluate), instruction(Msg.RoundEvaluate, 1, simulation.names));
    await until('five evaluations', () => from(Msg.RoundEvaluateResult, 1).length === 5);
    const results = new Map(from(Msg.RoundEvaluateResult, 1).map((m) => [m.payload.sender as string, m.payload]));
    for (const node of ['sim-1', 'sim-2', 'sim-3']) expect(results.get(node)).toMatchObject({ status: 'ok', loss: 0, accuracy: 0 });
    for (const node of ['sim-4', 'sim-5']) expect(results.get(node)).toMatchObject({ status: 'error', error: expect.stringMatching(/was not received by this worker/) });
  });

  it('stops each virtual worker as an edge worker stops: a goodbye from each', async () => {
    await simulation.stop();
    await until('five goodbyes', () => from(Msg.NodeLeaving).length === 5);
    expect(from(Msg.NodeLeaving).map((m) => m.payload.sender).sort()).toEqual(['sim-1', 'sim-2', 'sim-3', 'sim-4', 'sim-5']);
  });
});
