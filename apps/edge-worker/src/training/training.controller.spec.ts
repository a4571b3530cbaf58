/** @jest-environment ./libs/models/test/ort-environment.js */
import { Logger } from '@nestjs/common';
import { EvaluateResultPayload, FitResultPayload, Msg, RoundInstructionPayload } from '@fl/contracts';
import { BusContext, MessageBus, OutboundMessage } from '@fl/messaging';
import { buildClassifierPackage, decodeSafetensors, encodePackageBundle, encodeSafetensors, modelPackageFiles, NamedTensors, OnnxClassifierRunner, sha256Hex } from '@fl/models';
import { seededRandom } from '@fl/datasets';
import { EdgeWorkerConfig } from '../config';
import { SiteData } from '../site/site-data.service';
import { KeptWeights } from './kept-weights';
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
  const kept = new KeptWeights();
  const controller = new TrainingController(bus, config, site, packages, cancellations, kept);
  // Global weights off the initial ones, so the local loss has somewhere to go.
  const global: NamedTensors = new Map([...pkg.initialWeights].map(([k, t]) => [k, { shape: t.shape, data: t.data.map((v, i) => v + Math.sin(i)) }]));
  const weights = encodeSafetensors(global);
  let messages = 0;

  beforeAll(async () => {
    jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
    jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    await packages.add(bundleSha, bundle);
  });
  afterAll(async () => {
    jest.restoreAllMocks();
    await packages.onApplicationShutdown();
  });

  const instruction = (extra: Partial<RoundInstructionPayload> = {}): RoundInstructionPayload => ({
    task_id: 1,
    round: 1,
    sender: 'coordinator',
    use_case: 'iris',
    participants: ['site-a'],
    package_sha256: bundleSha,
    weights_sha256: sha256Hex(weights),
    reply_to: 'coordinator.c.round.result',
    ...extra,
  });
  const context = (name: string, payload: RoundInstructionPayload, attachment?: Buffer, attachmentSha256?: string) =>
    new BusContext({ name, payload: { ...payload }, attachment, attachmentSha256, routingKey: `workers.iris.${name}`, redelivered: false, messageId: `m${++messages}` });

  /** A fit answered; the instruction's weights attached unless it says they were kept. */
  async function fitAnswer(payload: RoundInstructionPayload): Promise<{ answer: FitResultPayload; attachment?: Buffer }> {
    await controller.fit(payload, context(Msg.RoundFit, payload, payload.kept_weights ? undefined : weights));
    const m = published.pop()!;
    return { answer: m.payload as unknown as FitResultPayload, attachment: m.attachment };
  }

  async function fit(extra: Partial<NonNullable<RoundInstructionPayload['config']>>): Promise<{ answer: FitResultPayload; weights: NamedTensors }> {
    const { answer, attachment } = await fitAnswer(instruction({ config: { local_epochs: 5, batch_size: 8, learning_rate: 0.3, seed: 4, ...extra } }));
    expect(answer).toMatchObject({ status: 'ok', examples: 40 });
    return { answer, weights: decodeSafetensors(attachment!).tensors as NamedTensors };
  }

  async function evaluate(payload: RoundInstructionPayload): Promise<EvaluateResultPayload> {
    await controller.evaluate(payload, context(Msg.RoundEvaluate, payload, weights));
    return published.pop()!.payload as unknown as EvaluateResultPayload;
  }

  const distance = (w: NamedTensors) => {
    let sq = 0;
    for (const [k, t] of global) t.data.forEach((v, i) => (sq += (w.get(k)!.data[i] - v) ** 2));
    return Math.sqrt(sq);
  };

  it("takes the bus's checked hash of chunked weights instead of hashing them again, and sends its update's hash with it", async () => {
    const config = { local_epochs: 1, batch_size: 8, learning_rate: 0.3, seed: 2 };
    const payload = instruction({ task_id: 12, config });
    // The bus vouches for the bytes (it checked them against this hash): the worker does not hash them again.
    const other = Buffer.from(weights);
    other.writeFloatLE(0.5, other.length - 4);
    await controller.fit(payload, context(Msg.RoundFit, payload, other, payload.weights_sha256));
    const vouched = published.pop()!;
    expect(vouched.payload).toMatchObject({ status: 'ok', trained_from: payload.weights_sha256 });
    // The update's hash goes with it, for the bus to send with its chunks.
    expect(vouched.attachmentSha256).toBe(sha256Hex(vouched.attachment!));
    expect(vouched.payload.weights_sha256).toBe(vouched.attachmentSha256);
    // Checked bytes with another hash than the instruction names: refused, as unchecked ones are.
    await controller.fit(payload, context(Msg.RoundFit, payload, weights, sha256Hex(other)));
    const refused = published.pop()!;
    expect(refused.payload).toMatchObject({ status: 'error', error: 'global weights do not match their sha256' });
    expect(refused.attachment).toBeUndefined();
    expect(refused.attachmentSha256).toBeUndefined();
  });

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

  it('keeps the evaluated weights when asked and says so; the next fit without weights trains from them, bit for bit as with them attached', async () => {
    const config = { local_epochs: 2, batch_size: 8, learning_rate: 0.3, seed: 9 };
    const attached = await fitAnswer(instruction({ task_id: 5, round: 2, config }));
    expect(attached.answer.status).toBe('ok');

    const notAsked = await evaluate(instruction({ task_id: 5, round: 1 }));
    expect(notAsked).toMatchObject({ status: 'ok', examples: 10 });
    expect(notAsked.kept_weights_sha256).toBeUndefined();
    const asked = await evaluate(instruction({ task_id: 5, round: 1, keep_weights: true }));
    expect(asked).toMatchObject({ status: 'ok', examples: 10, loss: notAsked.loss, accuracy: notAsked.accuracy, kept_weights_sha256: sha256Hex(weights) });
    expect(kept.keptBytes).toBe(weights.length);

    const fromKept = await fitAnswer(instruction({ task_id: 5, round: 2, config, kept_weights: true }));
    expect(fromKept.answer).toMatchObject({ status: 'ok', examples: 40, train_loss: attached.answer.train_loss, weights_sha256: attached.answer.weights_sha256 });
    expect(fromKept.attachment!.equals(attached.attachment!)).toBe(true);
    // Used once: the store gave them up.
    expect(kept.keptBytes).toBe(0);
  });

  it('evaluates the received weights before training when the fit lists it among the evaluators, and says what it trained from', async () => {
    const config = { local_epochs: 2, batch_size: 8, learning_rate: 0.3, seed: 9 };
    const alone = await evaluate(instruction({ task_id: 8, round: 1 }));
    const plain = await fitAnswer(instruction({ task_id: 8, round: 2, config }));
    expect(plain.answer.evaluation).toBeUndefined();
    expect(plain.answer.trained_from).toBe(sha256Hex(weights));

    const chained = await fitAnswer(instruction({ task_id: 8, round: 2, config, evaluates_round: 1, evaluators: ['site-b', 'site-a'] }));
    expect(chained.answer.evaluation).toMatchObject({ task_id: 8, round: 1, sender: 'site-a', status: 'ok', examples: 10, loss: alone.loss, accuracy: alone.accuracy });
    // The training is the same as without the evaluation.
    expect(chained.answer).toMatchObject({ status: 'ok', examples: 40, train_loss: plain.answer.train_loss, weights_sha256: plain.answer.weights_sha256, trained_from: sha256Hex(weights) });
    expect(chained.attachment!.equals(plain.attachment!)).toBe(true);

    const notListed = await fitAnswer(instruction({ task_id: 8, round: 2, config, evaluates_round: 1, evaluators: ['site-b'] }));
    expect(notListed.answer.evaluation).toBeUndefined();
    // Weights it cannot use: the fit and the evaluation both fail, naming why.
    const wrong = await fitAnswer(instruction({ task_id: 8, round: 2, config, evaluates_round: 1, evaluators: ['site-a'], weights_sha256: 'a'.repeat(64) }));
    expect(wrong.answer).toMatchObject({ status: 'error', error: 'global weights do not match their sha256' });
    expect(wrong.answer.evaluation).toMatchObject({ task_id: 8, round: 1, status: 'error', error: 'global weights do not match their sha256', examples: 0 });
  });

  it('answers a fit without weights it did not keep (another task\'s, other weights, or none) with an error naming them', async () => {
    const config = { local_epochs: 1, batch_size: 8, learning_rate: 0.3, seed: 9 };
    await evaluate(instruction({ task_id: 6, round: 1, keep_weights: true }));
    for (const payload of [instruction({ task_id: 7, round: 2, config, kept_weights: true }), instruction({ task_id: 6, round: 2, config, kept_weights: true, weights_sha256: 'a'.repeat(64) })]) {
      const { answer, attachment } = await fitAnswer(payload);
      expect(answer.status).toBe('error');
      expect(answer.error).toContain(`the global weights ${payload.weights_sha256.slice(0, 12)}… to train from were not kept here`);
      expect(attachment).toBeUndefined();
    }
    // Task 6's are still there for its own fit.
    expect((await fitAnswer(instruction({ task_id: 6, round: 2, config, kept_weights: true }))).answer.status).toBe('ok');
    expect((await fitAnswer(instruction({ task_id: 6, round: 3, config, kept_weights: true }))).answer.status).toBe('error');
  });
});
