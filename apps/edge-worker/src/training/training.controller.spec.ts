/** @jest-environment ./libs/models/test/ort-environment.js */
import { Logger } from '@nestjs/common';
import { FitResultPayload, Msg, RoundInstructionPayload } from '@fl/contracts';
import { BusContext, MessageBus, OutboundMessage } from '@fl/messaging';
import { buildClassifierPackage, decodeSafetensors, encodePackageBundle, encodeSafetensors, modelPackageFiles, NamedTensors, OnnxClassifierRunner, sha256Hex } from '@fl/models';
import { seededRandom } from '@fl/datasets';
import { EdgeWorkerConfig } from '../config';
import { SiteData } from '../site/site-data.service';
import { PackageCache } from './package-cache';
import { TrainingCancellations } from './training-cancellations';
import { TrainingController } from './training.controller';

/** Three clusters of rows, the label saying which. */
function rows(n: number, seed: number) {
  const rand = seededRandom(seed);
  const x = new Float32Array(n * 4);
  const labels = new Int32Array(n);
  for (let r = 0; r < n; r++) {
    labels[r] = r % 3;
    for (let j = 0; j < 4; j++) x[r * 4 + j] = (j === labels[r] ? 2 : 0) + rand() - 0.5;
  }
  return { x, labels, n };
}

describe('TrainingController fit: what the strategy asks of the worker', () => {
  const pkg = buildClassifierPackage({ name: 'fit', featureNames: ['a', 'b', 'c', 'd'], classes: ['x', 'y', 'z'], hidden: [], normalization: { mean: [0, 0, 0, 0], std: [1, 1, 1, 1] }, seed: 3 });
  const bundle = encodePackageBundle(modelPackageFiles(pkg));
  const bundleSha = sha256Hex(bundle);
  const split = { train: rows(40, 1), test: rows(10, 2) };
  const config = { NODE_NAME: 'site-a', ORT_THREADS: 1 } as EdgeWorkerConfig;
  const published: OutboundMessage[] = [];
  const bus = { publish: async (_route: string, m: OutboundMessage) => void published.push(m) } as unknown as MessageBus;
  const site = { split: (uc: string) => (uc === 'iris' ? split : undefined) } as unknown as SiteData;
  const cancellations = {
    begin: () => ({ signal: new AbortController().signal, onStep: () => undefined, stepsAtCancel: undefined, end: () => undefined }),
    isCancelled: () => false,
  } as unknown as TrainingCancellations;
  const packages = new PackageCache(config);
  const controller = new TrainingController(bus, config, site, packages, cancellations);
  // Global weights off the initial ones, so the local loss has somewhere to go.
  const global: NamedTensors = new Map([...pkg.initialWeights].map(([k, t]) => [k, { shape: t.shape, data: t.data.map((v, i) => v + Math.sin(i)) }]));
  const weights = encodeSafetensors(global);
  let messages = 0;

  beforeAll(async () => {
    jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
    await packages.add(bundleSha, bundle);
  });
  afterAll(async () => {
    jest.restoreAllMocks();
    await packages.onApplicationShutdown();
  });

  async function fit(extra: Partial<NonNullable<RoundInstructionPayload['config']>>): Promise<{ answer: FitResultPayload; weights: NamedTensors }> {
    const payload: RoundInstructionPayload = {
      task_id: 1,
      round: 1,
      sender: 'coordinator',
      use_case: 'iris',
      participants: ['site-a'],
      package_sha256: bundleSha,
      weights_sha256: sha256Hex(weights),
      reply_to: 'coordinator.c.round.fit-result',
      config: { local_epochs: 5, batch_size: 8, learning_rate: 0.3, seed: 4, ...extra },
    };
    const ctx = new BusContext({ name: Msg.RoundFit, payload: { ...payload }, attachment: weights, routingKey: 'workers.iris.round.fit', redelivered: false, messageId: `m${++messages}` });
    await controller.fit(payload, ctx);
    const m = published.pop()!;
    const answer = m.payload as unknown as FitResultPayload;
    expect(answer).toMatchObject({ status: 'ok', examples: 40 });
    return { answer, weights: decodeSafetensors(m.attachment!).tensors as NamedTensors };
  }

  const distance = (w: NamedTensors) => {
    let sq = 0;
    for (const [k, t] of global) t.data.forEach((v, i) => (sq += (w.get(k)!.data[i] - v) ** 2));
    return Math.sqrt(sq);
  };

  it('reports loss_before_fit only when the fit config asks: the global weights\' loss on the training rows', async () => {
    const plain = await fit({});
    expect(plain.answer.loss_before_fit).toBeUndefined();
    const asked = await fit({ report_loss_before_fit: true });
    const runner = await OnnxClassifierRunner.create(pkg);
    try {
      const expected = (await runner.evaluate(global, split.train)).loss;
      expect(asked.answer.loss_before_fit).toBeCloseTo(expected, 6);
      // training lowers it: the reported train loss is after fitting
      expect(asked.answer.train_loss).toBeLessThan(expected);
    } finally {
      await runner.release();
    }
  });

  it('trains with the proximal term when the fit config has proximal_mu: the larger, the closer to the global weights', async () => {
    const plain = distance((await fit({})).weights);
    const small = distance((await fit({ proximal_mu: 0.5 })).weights);
    const large = distance((await fit({ proximal_mu: 5 })).weights);
    expect(small).toBeLessThan(plain);
    expect(large).toBeLessThan(small);
  });
});
