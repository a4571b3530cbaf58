import { DEFAULT_FL_SETTINGS, Msg, RoundFigures, RoundInstructionPayload, TaskSpec } from '@fl/contracts';
import { IRIS, modelInputs } from '@fl/datasets';
import { MessageBus, OutboundMessage } from '@fl/messaging';
import { buildClassifierPackage, decodeSafetensors, encodeSafetensors, modelPackageFiles, NamedTensors, sha256Hex } from '@fl/models';
import { ModelRegistry } from '@fl/registry';
import { PlatformMetrics } from '@fl/runtime';
import { CoordinatorConfig } from '../config';
import { EdgeWorkerRegistry } from '../nodes/node-registry.service';
import { ResultRouter } from './result-router';
import { RoundsRepository } from './rounds.repository';
import { TaskRunner } from './task-runner';

/** A promise settled from outside. */
function deferred<T = void>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

/** Lets every pending promise callback run: the fakes below do no I/O, so what can happen has happened. */
const settled = () => new Promise((r) => setImmediate(r));

const SITES = ['site-a', 'site-b'];
const TASK_ID = 11;

const spec = {
  task_id: TASK_ID,
  user_id: 'u',
  use_case: 'iris',
  model_name: 'iris_mlp',
  model_version: 1,
  num_global_iterations: 3,
  run_name: 'r',
  experiment_name: 'e',
  settings: { ...DEFAULT_FL_SETTINGS, min_fit_clients: 2, fraction_fit: 1 },
} as TaskSpec;

/**
 * A task runner over fakes: two zero-compute sites that answer every
 * instruction at once (fit returns the weights it got), a registry holding an
 * iris MLP, a rounds repository whose start rows the test may hold back, and
 * `resumable` completed rounds it lists. `log` records what happened, in order.
 *
 * Sites evaluate within a fit that asks them to (chained evaluation), except
 * those left out of `chaining` (a release before it: they only train).
 */
function harness(
  hold: { start?: Map<number, Promise<void>> } = {},
  opts: {
    spec?: TaskSpec;
    config?: Partial<CoordinatorConfig>;
    training?: boolean;
    failEvaluate?: number[];
    failFit?: number[];
    keeping?: string[];
    chaining?: string[];
    /** Before its answer to the first fit of these rounds, each site sends one trained from other weights (an earlier instruction's). */
    staleFit?: number[];
    /** The task's completed rounds the repository lists (with a checkpoint pushed by the test: a resumed task). */
    resumable?: { round: number; figures: RoundFigures }[];
    /**
     * Each update comes with its weights_sha256 and, as from a chunked transfer, the hash the bus checked it
     * against: its own, or (`wrong`) for site-a in round 1 another one than its weights_sha256.
     */
    vouch?: 'right' | 'wrong';
  } = {},
) {
  const log: string[] = [];
  const stored: (RoundFigures & { round: number })[] = [];
  const checkpoints: { round: number; weights: Buffer; sha256: string; strategy_state: Buffer | null }[] = [];
  const evaluations = new Map<number, number>();
  const fits = new Map<number, number>();
  const answered = new Map<string, ReturnType<typeof deferred<void>>>();
  const answeredOf = (phase: string, round: number) => answered.get(`${phase} ${round}`) ?? answered.set(`${phase} ${round}`, deferred()).get(`${phase} ${round}`)!;
  const router = new ResultRouter();
  // With keeping, those sites keep the weights an evaluation asks them to keep, say so, and train from them when a fit comes without.
  const keptAt = new Map<string, Buffer>();
  const bus = {
    publish: async (_route: string, msg: OutboundMessage) => {
      const { round, keep_weights, kept_weights, weights_sha256, evaluates_round, evaluators } = msg.payload as unknown as RoundInstructionPayload;
      if (msg.name === Msg.RoundFit || msg.name === Msg.RoundEvaluate) {
        const phase = msg.name === Msg.RoundFit ? 'fit' : 'evaluate';
        log.push(`${phase} ${round} sent${msg.attachment ? '' : ' without weights'}`);
        if (msg.attachment && msg.attachmentSha256 !== weights_sha256) log.push(`${phase} ${round} sent without the weights' hash for the bus`);
        if (evaluates_round !== undefined) log.push(`evaluation ${evaluates_round} asked of ${evaluators!.join(', ')}`);
        if (keep_weights) log.push(`keeping ${round}'s weights asked`);
        // The evaluation a fit carries fails like one on its own (failEvaluate).
        const carried = evaluates_round === undefined ? 0 : evaluations.set(evaluates_round, (evaluations.get(evaluates_round) ?? 0) + 1).get(evaluates_round)!;
        const carriedFails = carried === 1 && opts.failEvaluate?.includes(evaluates_round!);
        if (Boolean(kept_weights) !== (msg.attachment === undefined)) throw new Error(`fit ${round}: kept_weights ${kept_weights} with${msg.attachment ? '' : 'out'} weights`);
        // With failEvaluate, the first evaluation of those rounds fails at every site: the round runs again.
        // With failFit, the first fit of those rounds fails at every site.
        const attempts = phase === 'evaluate' ? evaluations : fits;
        const attempt = attempts.set(round, (attempts.get(round) ?? 0) + 1).get(round)!;
        const failed = attempt === 1 && (phase === 'evaluate' ? opts.failEvaluate : opts.failFit)?.includes(round);
        queueMicrotask(() => {
          SITES.forEach((node, k) => {
            const keeps = opts.keeping?.includes(node) && keep_weights && !failed;
            const received = kept_weights ? keptAt.get(node) : msg.attachment;
            keptAt.delete(node);
            if (keeps) keptAt.set(node, msg.attachment!);
            const evaluation =
              evaluates_round !== undefined && evaluators!.includes(node) && (opts.chaining ?? SITES).includes(node)
                ? { task_id: TASK_ID, round: evaluates_round, sender: node, duration_ms: 0, ...(carriedFails ? { status: 'error', error: 'no data', examples: 0, loss: 0, accuracy: 0 } : { status: 'ok', examples: 10, loss: 0.4, accuracy: 0.8 }) }
                : undefined;
            const payload =
              // loss_before_fit: what QFedAvg asks of the sites (the others ignore it).
              phase === 'fit'
                ? { ...(received && !failed ? { status: 'ok', examples: 40 + 20 * k, train_loss: 0.5, loss_before_fit: 0.6 + 0.1 * k } : { status: 'error', error: 'not kept', examples: 0, train_loss: 0 }), trained_from: weights_sha256, ...(evaluation ? { evaluation } : {}) }
                : failed ? { status: 'error', error: 'no data', examples: 0, loss: 0, accuracy: 0 }
                : { status: 'ok', examples: 10, loss: 0.4, accuracy: 0.8, ...(keeps ? { kept_weights_sha256: weights_sha256 } : {}) };
            // With training, each site moves every weight by its own step (zero compute otherwise: the weights it got).
            const attachment = phase !== 'fit' || !received || failed ? undefined : opts.training ? trained(received, 0.01 * (k + 1) * (round % 2 ? 1 : -0.5)) : received;
            if (phase === 'fit' && attempt === 1 && opts.staleFit?.includes(round)) {
              // Other weights' update: folded in, it would change the result.
              const stale = { ...payload, trained_from: 'f'.repeat(64) };
              expect(router.route(TASK_ID, round, phase, node, { payload: stale, attachment: attachment && trained(attachment, 1) })).toBe('stale');
            }
            if (opts.vouch && phase === 'fit' && attachment) {
              const sha256 = sha256Hex(attachment);
              const vouched = opts.vouch === 'wrong' && round === 1 && node === SITES[0] ? sha256Hex(Buffer.from('other bytes')) : sha256;
              router.route(TASK_ID, round, phase, node, { payload: { ...payload, weights_sha256: sha256 }, attachment, attachmentSha256: vouched });
              return;
            }
            router.route(TASK_ID, round, phase, node, { payload, attachment });
          });
          answeredOf(phase, round).resolve();
          if (evaluates_round !== undefined) answeredOf('evaluate', evaluates_round).resolve();
        });
      }
    },
  } as unknown as MessageBus;
  const pkg = buildClassifierPackage({ name: 'iris_mlp', featureNames: modelInputs(IRIS).names, classes: IRIS.label.classes, hidden: [4], normalization: { mean: modelInputs(IRIS).mean, std: modelInputs(IRIS).std }, seed: 0 });
  const registry = {
    downloadArtifacts: async () => Object.entries(modelPackageFiles(pkg)).map(([path, data]) => ({ path, data })),
    searchVersions: async () => [],
    createModel: async () => undefined,
    createVersion: async () => ({ version: 2 }),
  } as unknown as ModelRegistry;
  const rounds = {
    latestCheckpoint: async () => checkpoints[checkpoints.length - 1] ?? null,
    completedRounds: async () => opts.resumable ?? [],
    start: async (_: number, round: number) => {
      log.push(`start ${round} asked`);
      await hold.start?.get(round);
      log.push(`start ${round} stored`);
    },
    complete: async (_: number, round: number, figures: RoundFigures, weights: Buffer, sha256: string, o: { strategyState?: Buffer | Buffer[] | null; next?: { round: number; selected: string[] } }) => {
      // The next round's start goes in the same statement: if it cannot be written, nothing is.
      if (o.next) {
        log.push(`start ${o.next.round} asked with complete ${round} (${o.next.selected.join(', ')})`);
        await hold.start?.get(o.next.round);
        log.push(`start ${o.next.round} stored`);
      }
      log.push(`complete ${round}`);
      stored.push({ round, ...figures });
      const state = o.strategyState == null ? null : Buffer.concat(Array.isArray(o.strategyState) ? o.strategyState : [o.strategyState]);
      checkpoints.push({ round, weights: Buffer.from(weights), sha256, strategy_state: state });
    },
    figures: async () => stored,
    fail: async (_: number, round: number) => void log.push(`fail ${round}`),
    participants: async (_: number, round: number, records: { fit?: { node: string; status: string }[] }) =>
      void log.push(`participants ${round}: ${(records.fit ?? []).map((r) => `${r.node} ${r.status}`).join(', ')}`),
  } as unknown as RoundsRepository;
  const workers = { online: async () => SITES.map((name) => ({ name, train: 100, test: 10 })) } as unknown as EdgeWorkerRegistry;
  const runner = new TaskRunner(
    {
      config: Object.assign(new CoordinatorConfig(), { COORDINATOR_ID: 'c1', ROUND_RETRIES: 0, WORKER_WAIT_S: 1 }, opts.config),
      bus,
      registry,
      workers,
      rounds,
      router,
      metrics: new PlatformMetrics('coordinator-test'),
      parentRunId: () => undefined,
      cancelRequested: async () => false,
      onResumed: (rounds) => void log.push(`resumed after ${rounds.map((r) => r.round).join(', ')}`),
      onRound: (round) => void log.push(`event ${round}`),
    },
    opts.spec ?? spec,
    new AbortController().signal,
  );
  return { runner, log, answered: answeredOf, checkpoints, stored };
}

/** An update: the weights received, each moved by `step`. */
function trained(weights: Buffer, step: number): Buffer {
  const out: NamedTensors = new Map();
  for (const [name, t] of decodeSafetensors(weights).tensors) out.set(name, { shape: t.shape, data: t.data.map((v) => v + step) });
  return encodeSafetensors(out);
}

describe('TaskRunner: what overlaps between rounds', () => {
  it("hands each round's event over once its end is stored, in order, without waiting for it", async () => {
    const { runner, log } = harness();
    const result = await runner.run();
    expect(result.metrics.rounds).toBe(3);
    expect(log.filter((l) => l.startsWith('complete') || l.startsWith('event'))).toEqual(['complete 1', 'event 1', 'complete 2', 'event 2', 'complete 3', 'event 3']);
  });

  it('hands every completed round over again when it resumes a task, and runs the rounds after its checkpoint', async () => {
    const first = harness();
    await first.runner.run();
    const [one, two] = first.stored.map(({ round, ...figures }) => ({ round, figures }));
    // A task whose coordinator died after round 2 was stored: its events may not have gone out.
    const resumed = harness({}, { resumable: [one, two] });
    resumed.checkpoints.push(first.checkpoints[1]);
    await resumed.runner.run();
    expect(resumed.log.filter((l) => l.startsWith('resumed') || l.startsWith('complete') || l.startsWith('event'))).toEqual(['resumed after 1, 2', 'complete 3', 'event 3']);
  });

  it("sends the fit instruction while the round's start row is written, and stores the round's end after it", async () => {
    const start1 = deferred();
    const { runner, log, answered } = harness({ start: new Map([[1, start1.promise]]) });
    const run = runner.run();

    await answered('evaluate', 1).promise;
    await settled();
    expect(log.indexOf('fit 1 sent')).toBeGreaterThan(log.indexOf('start 1 asked'));
    expect(log).not.toContain('start 1 stored');
    expect(log).not.toContain('complete 1');

    start1.resolve();
    await run;
    expect(log.indexOf('complete 1')).toBeGreaterThan(log.indexOf('start 1 stored'));
  });

  it("fails the task when the round's start row cannot be written, though the round went on meanwhile", async () => {
    const start2 = deferred();
    const { runner, log } = harness({ start: new Map([[2, start2.promise]]) });
    const run = runner.run();
    start2.promise.catch(() => undefined); // observed by the runner once it gets there
    start2.reject(new Error('connection terminated'));
    await expect(run).rejects.toThrow('connection terminated');
    expect(log).toContain('fit 2 sent');
    // Round 2's start goes with round 1's end: neither is stored.
    expect(log).not.toContain('complete 1');
    expect(log).not.toContain('complete 2');
    expect(log).not.toContain('fail 2');
  });

  it("writes a round whose fit went out with the last round's evaluation in that round's end: one statement per round", async () => {
    const { runner, log } = harness();
    await runner.run();
    expect(log.filter((l) => l.startsWith('start') || l.startsWith('complete'))).toEqual([
      'start 1 asked',
      'start 1 stored',
      'start 2 asked with complete 1 (site-a, site-b)',
      'start 2 stored',
      'complete 1',
      'start 3 asked with complete 2 (site-a, site-b)',
      'start 3 stored',
      'complete 2',
      'complete 3',
    ]);
  });

  it('writes the next round\'s start on its own, with how the sites answered its fit, when the round whose end would carry it fails', async () => {
    const { runner, log } = harness({}, { failEvaluate: [1], config: { ROUND_RETRIES: 1 } });
    await runner.run();
    const fail = log.indexOf('fail 1');
    expect(fail).toBeGreaterThan(log.indexOf('fit 2 sent'));
    // After the failed round's record: round 2's start row, then the answers to the fit that went out with it.
    expect(log.slice(fail + 1, fail + 4)).toEqual(['start 2 asked', 'start 2 stored', 'participants 2: site-a received, site-b received']);
    expect(log.filter((l) => l.startsWith('complete'))).toEqual(['complete 1', 'complete 2', 'complete 3']);
  });
});

const fedAdamParams = { min_fit_clients: 2, fraction_fit: 1, eta: 0.05, eta_l: 0.1, beta_1: 0.9, beta_2: 0.99, tau: 1e-3 };
const fedAdam = { ...spec, settings: { ...spec.settings, strategy: 'FedAdam', strategy_params: fedAdamParams } } as TaskSpec;

/** A FedAdam task run to its end over the harness's training sites: its last checkpoint, its log and the instructions it sent. */
async function finalCheckpoint(options: Parameters<typeof harness>[1]) {
  const { runner, checkpoints, log, stored } = harness({}, { spec: fedAdam, training: true, ...options });
  await runner.run();
  // Each round's figures, without its times.
  const figures = stored.map(({ round, participants, examples, train_loss, eval_loss, eval_accuracy, eval_examples }) => ({ round, participants, examples, train_loss, eval_loss, eval_accuracy, eval_examples }));
  return { last: checkpoints[checkpoints.length - 1], log, sent: log.filter((l) => l.includes(' sent') && !l.startsWith('event')), figures };
}

describe('TaskRunner: the evaluation travels with the next fit (CHAINED_EVALUATION)', () => {
  const run = (options: Parameters<typeof harness>[1] = {}) => finalCheckpoint({ ...options, config: { ROUND_RETRIES: 1, ...options.config } });
  const apart = (options: Parameters<typeof harness>[1] = {}) => run({ ...options, config: { CHAINED_EVALUATION: 'off', ...options.config } });
  const ends = (log: string[]) => log.filter((l) => l.startsWith('fail') || l.startsWith('complete'));

  it('sends one instruction per round and the last evaluation on its own, to the same bits and figures as evaluations apart', async () => {
    const chained = await run();
    const separate = await apart();
    expect(chained.sent).toEqual(['fit 1 sent', 'fit 2 sent', 'fit 3 sent', 'evaluate 3 sent']);
    expect(chained.log.filter((l) => l.startsWith('evaluation'))).toEqual(['evaluation 1 asked of site-a, site-b', 'evaluation 2 asked of site-a, site-b']);
    expect(separate.sent).toEqual(['fit 1 sent', 'evaluate 1 sent', 'fit 2 sent', 'evaluate 2 sent', 'fit 3 sent', 'evaluate 3 sent']);
    expect(chained.last.round).toBe(3);
    expect(chained.last.weights.equals(separate.last.weights)).toBe(true);
    expect(chained.last.strategy_state!.equals(separate.last.strategy_state!)).toBe(true);
    expect(chained.figures).toEqual(separate.figures);
    expect(chained.figures.map((f) => f.eval_examples)).toEqual([20, 20, 20]);
    // A round's end is stored once the next round's answers, which carry its evaluation, are in.
    expect(chained.log.indexOf('complete 1')).toBeGreaterThan(chained.log.indexOf('fit 2 sent'));
  });

  it('asks a site of an earlier release, which only trains, for the evaluation on its own', async () => {
    const mixed = await run({ chaining: ['site-a'] });
    expect(mixed.sent).toEqual(['fit 1 sent', 'fit 2 sent', 'evaluate 1 sent', 'fit 3 sent', 'evaluate 2 sent', 'evaluate 3 sent']);
    // The next fit has carried those weights already: the site is not asked to keep them.
    expect(mixed.log.filter((l) => l.startsWith('keeping'))).toEqual([]);
    const separate = await apart();
    expect(separate.log.filter((l) => l.startsWith('keeping'))).toEqual(["keeping 1's weights asked", "keeping 2's weights asked"]);
    expect(mixed.figures).toEqual(separate.figures);
    expect(mixed.last.weights.equals(separate.last.weights)).toBe(true);
  });

  it("runs a round again when the evaluation its next fit carried fails, and drops the updates made from the round's weights", async () => {
    const retried = await run({ failEvaluate: [2] });
    expect(ends(retried.log)).toEqual(['complete 1', 'fail 2', 'complete 2', 'complete 3']);
    expect(retried.sent).toEqual(['fit 1 sent', 'fit 2 sent', 'fit 3 sent', 'fit 2 sent', 'fit 3 sent', 'evaluate 3 sent']);
    const separate = await apart({ failEvaluate: [2] });
    expect(ends(separate.log)).toEqual(ends(retried.log));
    expect(retried.last.weights.equals(separate.last.weights)).toBe(true);
    expect(retried.last.strategy_state!.equals(separate.last.strategy_state!)).toBe(true);
  });

  it("sends the weights' hash for the bus to send with their chunks, and takes the bus's checked hash of an update instead of hashing it again", async () => {
    const plain = await run();
    const vouched = await run({ vouch: 'right' });
    expect(vouched.sent).toEqual(plain.sent);
    expect(plain.sent.length).toBeGreaterThan(0);
    expect(plain.log.filter((l) => l.includes("without the weights' hash"))).toEqual([]);
    expect(vouched.last.weights.equals(plain.last.weights)).toBe(true);
    // An update the bus checked against another hash than the one the site names is not used.
    await expect(run({ vouch: 'wrong' })).rejects.toThrow("round 1: 1 usable update(s) from 2 worker(s), min_fit_clients is 2; unusable: site-a: weights do not match their sha256");
  });

  it('ignores an answer trained from other weights (an earlier instruction for the round) and takes the one to its own', async () => {
    const withStale = await run({ staleFit: [2, 3] });
    const plain = await run();
    expect(withStale.sent).toEqual(plain.sent);
    expect(withStale.last.weights.equals(plain.last.weights)).toBe(true);
  });

  it('keeps the evaluation apart for a large model, and where a site to evaluate is not chosen to fit next round', async () => {
    expect((await run({ config: { LARGE_MODEL_BYTES: 1 } })).sent).toEqual(['fit 1 sent', 'evaluate 1 sent', 'fit 2 sent', 'evaluate 2 sent', 'fit 3 sent', 'evaluate 3 sent']);
    const half = { min_fit_clients: 1, fraction_fit: 0.5 };
    const sampled = { ...fedAdam, settings: { ...fedAdam.settings, ...half, strategy_params: { ...fedAdamParams, ...half } } } as TaskSpec;
    const one = await run({ spec: sampled });
    expect(one.sent).toEqual(['fit 1 sent', 'evaluate 1 sent', 'fit 2 sent', 'evaluate 2 sent', 'fit 3 sent', 'evaluate 3 sent']);
    expect(one.figures.map((f) => [f.participants, f.eval_examples])).toEqual([[1, 20], [1, 20], [1, 20]]);
  });
});

describe('TaskRunner: weights the sites kept from the evaluation', () => {
  // Where evaluations are their own phase (CHAINED_EVALUATION off, or a site to evaluate not chosen to fit next round).
  const run = (options: Parameters<typeof harness>[1]) => finalCheckpoint({ config: { ROUND_RETRIES: 1, CHAINED_EVALUATION: 'off' }, ...options });

  it('sends the next fit without the weights once every site asked to fit kept them, to the same bits; never at the last round, nor in a round run again', async () => {
    const attached = await run({});
    const kept = await run({ keeping: SITES });
    expect(attached.sent.filter((l) => l.includes('without'))).toEqual([]);
    expect(kept.sent).toEqual(['fit 1 sent', 'evaluate 1 sent', 'fit 2 sent without weights', 'evaluate 2 sent', 'fit 3 sent without weights', 'evaluate 3 sent']);
    expect(kept.last.round).toBe(3);
    expect(kept.last.weights.equals(attached.last.weights)).toBe(true);
    expect(kept.last.strategy_state!.equals(attached.last.strategy_state!)).toBe(true);

    // Round 2's evaluation fails: its run again starts with the weights attached, as does the round after.
    const retried = await run({ keeping: SITES, failEvaluate: [2] });
    expect(retried.sent).toEqual([
      'fit 1 sent', 'evaluate 1 sent', 'fit 2 sent without weights', 'evaluate 2 sent', 'fit 2 sent', 'evaluate 2 sent', 'fit 3 sent without weights', 'evaluate 3 sent',
    ]);
    const retriedAttached = await run({ failEvaluate: [2] });
    expect(retried.last.weights.equals(retriedAttached.last.weights)).toBe(true);
    // Round 2's fit fails: the sites used their kept weights up, so its run again brings them.
    const refit = await run({ keeping: SITES, failFit: [2] });
    expect(refit.sent).toEqual([
      'fit 1 sent', 'evaluate 1 sent', 'fit 2 sent without weights', 'fit 2 sent', 'evaluate 2 sent', 'fit 3 sent without weights', 'evaluate 3 sent',
    ]);
    expect(refit.last.weights.equals((await run({ failFit: [2] })).last.weights)).toBe(true);
  });

  it('attaches the weights when a site asked to fit did not keep them (one that does not know how)', async () => {
    const some = await run({ keeping: ['site-a'] });
    expect(some.sent.filter((l) => l.includes('without'))).toEqual([]);
    expect(some.last.weights.equals((await run({})).last.weights)).toBe(true);
  });
});

describe('TaskRunner: large models with a server step (FedAdam), aggregated in place', () => {
  it('gives the same weights and state, to the bit, as the strategy holding the model several times; a round run again does not step the state twice', async () => {
    const strategyPath = await finalCheckpoint({ config: { ROUND_RETRIES: 1 } });
    const inPlace = await finalCheckpoint({ config: { ROUND_RETRIES: 1, LARGE_MODEL_BYTES: 1 } });
    // Round 2's first attempt fails after its aggregate was stepped: the state is read back from round 1's checkpoint.
    const retried = await finalCheckpoint({ config: { ROUND_RETRIES: 1, LARGE_MODEL_BYTES: 1 }, failEvaluate: [2] });
    expect(retried.log.filter((l) => l.startsWith('fail') || l.startsWith('complete'))).toEqual(['complete 1', 'fail 2', 'complete 2', 'complete 3']);

    expect(strategyPath.last.round).toBe(3);
    expect(strategyPath.last.strategy_state).not.toBeNull();
    for (const other of [inPlace, retried]) {
      expect(other.last.round).toBe(3);
      expect(other.last.weights.equals(strategyPath.last.weights)).toBe(true);
      expect(other.last.strategy_state!.equals(strategyPath.last.strategy_state!)).toBe(true);
    }
    // With an update norm bound: in place too (the global weights kept to measure against), the same bits.
    const bounded = { ...fedAdam, settings: { ...fedAdam.settings, max_update_norm: 10 } } as TaskSpec;
    const boundedStrategy = await finalCheckpoint({ spec: bounded });
    const boundedInPlace = await finalCheckpoint({ spec: bounded, config: { LARGE_MODEL_BYTES: 1 } });
    expect(boundedInPlace.last.weights.equals(boundedStrategy.last.weights)).toBe(true);
    expect(boundedInPlace.last.weights.equals(strategyPath.last.weights)).toBe(true); // no update was near the bound
    // And the weights moved: the sites trained, the server stepped.
    const first = await finalCheckpoint({ config: { LARGE_MODEL_BYTES: 1 }, spec: { ...fedAdam, num_global_iterations: 1 } });
    expect(first.last.weights.equals(strategyPath.last.weights)).toBe(false);
  }, 30_000);
});

describe('TaskRunner: large models with QFedAvg and differential privacy', () => {
  const privacy = { mode: 'central', noise_multiplier: 0, clipping_norm: 0.05, adaptive_clipping: false, target_clipped_quantile: 0.5, clip_norm_lr: 0.2, delta: 1e-5 };
  const specs: [string, TaskSpec][] = [
    ['QFedAvg', { ...spec, settings: { ...spec.settings, strategy: 'QFedAvg', strategy_params: { min_fit_clients: 2, fraction_fit: 1, q_param: 0.2, qffl_learning_rate: 0.1 } } } as TaskSpec],
    // No noise, so that runs can be compared; the clipping (0.05, below the sites' steps) and FedAdam's state are what is tested.
    ['FedAdam with central DP', { ...spec, settings: { ...spec.settings, strategy: 'FedAdam', strategy_params: fedAdamParams, privacy } } as TaskSpec],
    // Local DP: the sites noise (these fake ones do not), the coordinator folds in place with FedAdam alone.
    ['FedAdam with local DP', { ...spec, settings: { ...spec.settings, strategy: 'FedAdam', strategy_params: fedAdamParams, privacy: { ...privacy, mode: 'local' } } } as TaskSpec],
  ];

  it.each(specs)('%s: the same weights and state, to the bit, as for a small model; a round run again after its step starts from the stored state', async (_name, taskSpec) => {
    const runs = [{}, { LARGE_MODEL_BYTES: 1 }].map(async (config) => {
      const { runner, checkpoints, log } = harness({}, { spec: taskSpec, training: true, config: { ROUND_RETRIES: 1, ...config }, failEvaluate: [2] });
      await runner.run();
      return { last: checkpoints[checkpoints.length - 1], first: checkpoints[0], log };
    });
    const [small, large] = await Promise.all(runs);
    for (const run of [small, large]) expect(run.log.filter((l) => l.startsWith('fail') || l.startsWith('complete'))).toEqual(['complete 1', 'fail 2', 'complete 2', 'complete 3']);
    expect(large.last.round).toBe(3);
    expect(large.last.weights.equals(small.last.weights)).toBe(true);
    expect(large.last.strategy_state?.equals(small.last.strategy_state!) ?? small.last.strategy_state === null).toBe(true);
    // The weights moved: the sites trained and the strategy stepped.
    expect(large.last.weights.equals(large.first.weights)).toBe(false);
  }, 30_000);
});
