import { Logger } from '@nestjs/common';
import {
  EvaluateResultPayload,
  FitResultPayload,
  Msg,
  RoundFigures,
  RoundInstructionPayload,
  Routes,
  TaskSpec,
} from '@fl/contracts';
import { createStrategy, FitAggregation, hasServerState, ServerStateError, StateMap, Strategy, StrategyParameterError, weightedMean, WeightMap } from '@fl/aggregation';
import { seededPermutation } from '@fl/datasets';
import { MessageBus } from '@fl/messaging';
import { decodeSafetensors, encodePackageBundle, encodeSafetensors, modelPackageFiles, ModelPackage, NamedTensors, readModelPackage, sha256Hex } from '@fl/models';
import { ModelRegistry } from '@fl/registry';
import { isDatabaseUnavailable, PlatformMetrics, TaskLogger } from '@fl/runtime';
import { CoordinatorConfig } from '../config';
import { EdgeWorkerRegistry, OnlineNode } from '../nodes/node-registry.service';
import { Answer, ResultRouter } from './result-router';
import { NodeRoundFigures } from '../tracking/task-tracking';
import { RoundCollector } from './round-collector';
import { Checkpoint, ParticipantRecord, RoundsRepository } from './rounds.repository';
import { decodeStrategyState, encodeStrategyState, StrategyStateError } from './strategy-state';

export class TaskFailure extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TaskFailure';
  }
}

/** A round that ended without enough usable answers: it may be run again. */
export class RoundShortfall extends TaskFailure {
  constructor(message: string) {
    super(message);
    this.name = 'RoundShortfall';
  }
}

export class TaskStopped extends Error {
  constructor(readonly why: 'cancelled' | 'shutdown' | 'lease-lost') {
    super(`task stopped: ${why}`);
    this.name = 'TaskStopped';
  }
}

export interface TaskRunnerDeps {
  config: CoordinatorConfig;
  bus: MessageBus;
  registry: ModelRegistry;
  workers: EdgeWorkerRegistry;
  rounds: RoundsRepository;
  router: ResultRouter;
  onRound: (round: number, figures: RoundFigures, nodes: NodeRoundFigures[]) => Promise<void>;
  metrics: PlatformMetrics;
  /** The tracker run the trained model's artifacts are logged under, if any. */
  parentRunId: () => string | undefined;
  /** Whether a cancel was recorded for the task: checked before each round, in case its message went astray. */
  cancelRequested: () => Promise<boolean>;
}

export interface TaskResult {
  modelName: string;
  modelVersion: number;
  metrics: { eval_loss: number; eval_accuracy: number; eval_examples: number; train_loss: number; rounds: number };
}

interface RoundOutcome {
  weights: NamedTensors;
  figures: RoundFigures;
  nodes: NodeRoundFigures[];
}

/**
 * Runs one task's rounds: each round broadcasts the global weights once to the
 * use case's workers, folds the updates of the chosen ones into the task's
 * strategy as they arrive, evaluates the new weights on every online worker's
 * held-out split, and stores figures and checkpoint before the next round. The
 * global weights and the strategy's server-side state carry from round to
 * round; a task resumes from its last checkpoint, state included.
 */
export class TaskRunner {
  private readonly log: TaskLogger;
  private readonly packageSentTo = new Set<string>();
  private pkg!: ModelPackage;
  private bundle!: Buffer;
  private bundleSha!: string;
  /** The strategy's server-side state after the last completed round (empty for stateless strategies). */
  private serverState: StateMap = new Map();

  constructor(
    private readonly deps: TaskRunnerDeps,
    private readonly spec: TaskSpec,
    private readonly signal: AbortSignal,
  ) {
    this.log = new TaskLogger(new Logger(TaskRunner.name), { task_id: spec.task_id, correlation_id: spec.correlation_id });
  }

  private envelope(round: number) {
    return { task_id: this.spec.task_id, round, sender: this.deps.config.COORDINATOR_ID, correlation_id: this.spec.correlation_id };
  }

  private checkStopped(): void {
    if (this.signal.aborted) throw new TaskStopped((this.signal.reason as TaskStopped['why']) ?? 'cancelled');
  }

  async run(): Promise<TaskResult> {
    const { spec } = this;
    const probe = this.newStrategy();
    await this.loadPackage();
    let weights = this.pkg.initialWeights;
    let firstRound = 1;
    const checkpoint = await this.deps.rounds.latestCheckpoint(spec.task_id);
    if (checkpoint) {
      weights = decodeSafetensors(checkpoint.weights).tensors as NamedTensors;
      firstRound = checkpoint.round + 1;
      this.restoreServerState(probe, checkpoint, weights);
      this.log.log(`resuming after round ${checkpoint.round} from its checkpoint`);
    }
    for (let round = firstRound; round <= spec.num_global_iterations; round++) {
      const out = await this.runRoundWithRetries(round, weights);
      weights = out.weights;
      await this.deps.onRound(round, out.figures, out.nodes);
    }
    return this.register(weights);
  }

  /**
   * A round short of answers (a site stalled or died) is run again from the
   * same global weights, up to ROUND_RETRIES times; then the task fails with
   * the last attempt's reason, which names the missing sites.
   */
  private async runRoundWithRetries(round: number, weights: NamedTensors): Promise<RoundOutcome> {
    const retries = this.deps.config.ROUND_RETRIES;
    for (let attempt = 1; ; attempt++) {
      this.checkStopped();
      if (await this.deps.cancelRequested()) throw new TaskStopped('cancelled');
      try {
        return await this.runRound(round, weights);
      } catch (err) {
        if (!(err instanceof RoundShortfall) || attempt > retries) {
          if (err instanceof RoundShortfall && retries > 0) throw new RoundShortfall(`${err.message} (after ${retries} retr${retries === 1 ? 'y' : 'ies'} of the round)`);
          throw err;
        }
        this.log.warn(`${err.message}; running round ${round} again (retry ${attempt} of ${retries})`);
      }
    }
  }

  /** The task's strategy, a new instance per round attempt; a name or parameter the registry refuses fails the task naming it. */
  private newStrategy(): Strategy {
    const s = this.spec.settings;
    // Tasks stored before strategies could be chosen carry no strategy_params: FedAvg, whose parameters are the sampling ones.
    const params = s.strategy_params ?? { min_fit_clients: s.min_fit_clients, fraction_fit: s.fraction_fit };
    try {
      return createStrategy(s.strategy, params, { seed: s.seed });
    } catch (err) {
      if (err instanceof StrategyParameterError) throw new TaskFailure(err.message);
      throw err;
    }
  }

  /**
   * The server-side state stored with the checkpoint. A checkpoint written
   * before strategies kept state has none: the state then starts afresh, said
   * in the log. State that does not fit the strategy or the model fails the task.
   */
  private restoreServerState(strategy: Strategy, checkpoint: Checkpoint, weights: NamedTensors): void {
    if (!hasServerState(strategy)) return;
    if (!checkpoint.strategy_state) {
      this.log.warn(`the checkpoint of round ${checkpoint.round} holds no ${strategy.name} state: its server-side state starts afresh`);
      return;
    }
    try {
      const state = decodeStrategyState(strategy.name, checkpoint.strategy_state);
      strategy.loadServerState(state, weights as WeightMap);
      this.serverState = state;
    } catch (err) {
      if (err instanceof StrategyStateError || err instanceof ServerStateError) {
        throw new TaskFailure(`the checkpoint of round ${checkpoint.round} cannot be resumed: ${err.message}`);
      }
      throw err;
    }
  }

  private async loadPackage(): Promise<void> {
    const { model_name, model_version } = this.spec;
    const artifacts = await this.deps.registry.downloadArtifacts(model_name, model_version).catch((err: Error) => {
      // The local registry lives in the database: an outage there is waited out, not the model's fault.
      if (isDatabaseUnavailable(err)) throw err;
      throw new TaskFailure(`model '${model_name}' version ${model_version} could not be loaded from the registry: ${err.message}`);
    });
    const files: Record<string, Buffer> = {};
    for (const a of artifacts) files[a.path] = a.data;
    try {
      this.pkg = readModelPackage(files);
    } catch (err) {
      throw new TaskFailure(`model '${model_name}' version ${model_version} is not a usable model package: ${(err as Error).message}`);
    }
    this.bundle = encodePackageBundle(files);
    this.bundleSha = sha256Hex(this.bundle);
  }

  /** Online workers for the use case; waits (up to WORKER_WAIT_S) until at least `min` are there. */
  private async awaitWorkers(min: number, round: number): Promise<OnlineNode[]> {
    const deadline = Date.now() + this.deps.config.WORKER_WAIT_S * 1000;
    for (;;) {
      this.checkStopped();
      const online = await this.deps.workers.online(this.spec.use_case);
      const fit = online.filter((n) => n.train > 0);
      if (fit.length >= min) return online;
      if (Date.now() >= deadline) {
        const names = fit.map((n) => n.name).join(', ') || 'none';
        throw new TaskFailure(
          `round ${round}: ${fit.length} edge worker(s) serving use case '${this.spec.use_case}' are online (${names}) but min_fit_clients is ${min}; ` +
            `start more workers or lower min_fit_clients`,
        );
      }
      await this.pause(Math.min(500, Math.max(0, deadline - Date.now())));
    }
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      const signal = this.signal;
      function done() {
        clearTimeout(t);
        signal.removeEventListener('abort', done);
        resolve();
      }
      signal.addEventListener('abort', done, { once: true });
    });
  }

  /** Flower's sampling: max(min_fit_clients, fraction_fit * available) workers, seeded per round. */
  private sample(candidates: OnlineNode[], round: number): OnlineNode[] {
    const s = this.spec.settings;
    const want = Math.min(candidates.length, Math.max(s.min_fit_clients, Math.ceil(s.fraction_fit * candidates.length)));
    const perm = seededPermutation(candidates.length, s.seed * 100_003 + round);
    return Array.from(perm.subarray(0, want), (i) => candidates[i]).sort((a, b) => a.name.localeCompare(b.name));
  }

  /**
   * A worker that reports an error may have restarted and lost the package
   * (its cache is in memory): it gets the package again before its next phase.
   */
  private forgetPackage(node: string): void {
    this.packageSentTo.delete(node);
  }

  /** Sends the model package to each worker that has not had it from this task yet, all at once. */
  private async ensurePackage(nodes: string[]): Promise<void> {
    const missing = nodes.filter((n) => !this.packageSentTo.has(n));
    await Promise.all(
      missing.map((node) =>
        this.deps.bus.publish(Routes.worker(node, Msg.ModelPackage), {
          name: Msg.ModelPackage,
          payload: { ...this.envelope(0), package_sha256: this.bundleSha },
          attachment: this.bundle,
        }),
      ),
    );
    for (const node of missing) this.packageSentTo.add(node);
  }

  private async broadcast(msg: typeof Msg.RoundFit | typeof Msg.RoundEvaluate, round: number, participants: string[], weights: Buffer): Promise<void> {
    const s = this.spec.settings;
    const payload: RoundInstructionPayload = {
      ...this.envelope(round),
      use_case: this.spec.use_case,
      participants,
      package_sha256: this.bundleSha,
      weights_sha256: sha256Hex(weights),
      reply_to: Routes.coordinator(this.deps.config.COORDINATOR_ID, msg === Msg.RoundFit ? Msg.RoundFitResult : Msg.RoundEvaluateResult),
      ...(msg === Msg.RoundFit ? { config: { local_epochs: s.local_epochs, batch_size: s.batch_size, learning_rate: s.learning_rate, seed: s.seed + round } } : {}),
    };
    await this.deps.bus.publish(Routes.useCaseWorkers(this.spec.use_case, msg), { name: msg, payload: { ...payload }, attachment: weights });
  }

  private async runRound(round: number, global: NamedTensors): Promise<RoundOutcome> {
    const { spec, deps } = this;
    const s = spec.settings;
    const started = new Date();
    const online = await this.awaitWorkers(s.min_fit_clients, round);
    const chosen = this.sample(online.filter((n) => n.train > 0), round).map((n) => n.name);
    await deps.rounds.start(spec.task_id, round, chosen.length);
    await deps.rounds.participants(spec.task_id, round, 'fit', chosen.map((node) => ({ node, status: 'selected' as const })));

    // Fit: fold each update into the aggregate as it arrives. A new strategy
    // per attempt, from the state of the last completed round, so that a round
    // run again does not step the server state twice.
    const strategy = this.newStrategy();
    if (hasServerState(strategy) && this.serverState.size) strategy.loadServerState(this.serverState, global as WeightMap);
    const aggregator = strategy.beginFit(round, global as WeightMap);
    try {
      return await this.runPhases(round, started, online, chosen, global, strategy, aggregator);
    } finally {
      aggregator.dispose();
    }
  }

  private async runPhases(
    round: number,
    started: Date,
    online: OnlineNode[],
    chosen: string[],
    global: NamedTensors,
    strategy: Strategy,
    aggregator: FitAggregation,
  ): Promise<RoundOutcome> {
    const { spec, deps } = this;
    const s = spec.settings;
    const perNode = new Map<string, NodeRoundFigures>();
    const nodeFigures = (node: string) => perNode.get(node) ?? perNode.set(node, { node }).get(node)!;
    const trainLosses: { value: number; examples: number }[] = [];
    const problems: string[] = [];
    const fitRecords: ParticipantRecord[] = [];
    const fit = await this.collect<FitResultPayload>(round, 'fit', chosen, (node, { payload: p, attachment }) => {
      const reason = this.foldUpdate(aggregator, node, p, attachment);
      if (p.status === 'error') this.forgetPackage(node);
      if (reason) {
        problems.push(`${node}: ${reason}`);
        fitRecords.push({ node, status: p.status === 'error' ? 'failed' : 'rejected', examples: p.examples, reason });
        return;
      }
      trainLosses.push({ value: p.train_loss, examples: p.examples });
      nodeFigures(node).fit = { examples: p.examples, loss: p.train_loss };
      fitRecords.push({ node, status: 'received', examples: p.examples, loss: p.train_loss });
    }, async () => this.broadcast(Msg.RoundFit, round, chosen, encodeSafetensors(global)));
    for (const node of fit.missing) fitRecords.push({ node, status: 'missing', reason: `no answer within ${s.round_timeout_s} s` });
    await deps.rounds.participants(spec.task_id, round, 'fit', fitRecords);
    this.countAnswers('fit', fitRecords);
    this.checkStopped();
    if (aggregator.updates < s.min_fit_clients) {
      await this.failRound(round);
      const missing = fit.missing.length ? `; no answer within ${s.round_timeout_s} s from ${fit.missing.join(', ')}` : '';
      const bad = problems.length ? `; unusable: ${problems.join('; ')}` : '';
      throw new RoundShortfall(`round ${round}: ${aggregator.updates} usable update(s) from ${chosen.length} worker(s), min_fit_clients is ${s.min_fit_clients}${missing}${bad}`);
    }
    const participants = aggregator.updates;
    const examples = aggregator.examples;
    let next: NamedTensors;
    try {
      next = aggregator.finish().parameters as NamedTensors;
    } catch (err) {
      throw new TaskFailure(`round ${round}: ${strategy.name} could not aggregate ${participants} update(s): ${(err as Error).message}`);
    }
    const nextBuf = encodeSafetensors(next);

    // Evaluate the new global weights on the held-out split of every worker online at the round's start.
    const evaluators = online.filter((n) => n.test > 0).map((n) => n.name);
    const evals: { loss: number; accuracy: number; examples: number }[] = [];
    const evalRecords: ParticipantRecord[] = [];
    const ev = await this.collect<EvaluateResultPayload>(round, 'evaluate', evaluators, (node, { payload: p }) => {
      if (p.status === 'error') this.forgetPackage(node);
      if (p.status !== 'ok' || !(p.examples > 0) || !Number.isFinite(p.loss) || !Number.isFinite(p.accuracy)) {
        evalRecords.push({ node, status: 'failed', reason: p.error ?? 'unusable evaluation' });
        return;
      }
      evals.push({ loss: p.loss, accuracy: p.accuracy, examples: p.examples });
      nodeFigures(node).evaluate = { examples: p.examples, loss: p.loss, accuracy: p.accuracy };
      evalRecords.push({ node, status: 'received', examples: p.examples, loss: p.loss, accuracy: p.accuracy });
    }, async () => this.broadcast(Msg.RoundEvaluate, round, evaluators, nextBuf));
    for (const node of ev.missing) evalRecords.push({ node, status: 'missing', reason: `no answer within ${s.round_timeout_s} s` });
    await deps.rounds.participants(spec.task_id, round, 'evaluate', evalRecords);
    this.countAnswers('evaluate', evalRecords);
    this.checkStopped();
    if (evals.length === 0) {
      await this.failRound(round);
      throw new RoundShortfall(`round ${round}: no edge worker returned an evaluation of the new weights (asked: ${evaluators.join(', ') || 'none online'})`);
    }

    const finished = new Date();
    const figures: RoundFigures = {
      participants,
      examples,
      train_loss: weightedMean(trainLosses),
      eval_loss: weightedMean(evals.map((e) => ({ value: e.loss, examples: e.examples }))),
      eval_accuracy: weightedMean(evals.map((e) => ({ value: e.accuracy, examples: e.examples }))),
      eval_examples: evals.reduce((a, e) => a + e.examples, 0),
      started_at: started.toISOString(),
      finished_at: finished.toISOString(),
      duration_ms: finished.getTime() - started.getTime(),
    };
    const state = hasServerState(strategy) ? strategy.saveServerState() : new Map<string, Float64Array>();
    await deps.rounds.complete(spec.task_id, round, figures, nextBuf, sha256Hex(nextBuf), encodeStrategyState(strategy.name, state));
    this.serverState = state;
    deps.metrics.rounds.inc({ outcome: 'completed' });
    deps.metrics.roundDuration.observe(figures.duration_ms / 1000);
    return { weights: next, figures, nodes: [...perNode.values()] };
  }

  private countAnswers(phase: 'fit' | 'evaluate', records: ParticipantRecord[]): void {
    for (const r of records) this.deps.metrics.updates.inc({ phase, result: r.status });
  }

  private async failRound(round: number): Promise<void> {
    this.deps.metrics.rounds.inc({ outcome: 'failed' });
    await this.deps.rounds.fail(this.spec.task_id, round);
  }

  /** Validates one fit answer and folds it in; returns why it was not used, or null. */
  private foldUpdate(aggregator: FitAggregation, node: string, p: FitResultPayload, attachment: Buffer | undefined): string | null {
    if (p.status !== 'ok') return `worker reported an error: ${p.error ?? 'unknown'}`;
    if (!attachment) return 'no weights attached';
    if (p.weights_sha256 && sha256Hex(attachment) !== p.weights_sha256) return 'weights do not match their sha256';
    try {
      aggregator.add({ node, parameters: decodeSafetensors(attachment).tensors as WeightMap, numExamples: p.examples });
      return null;
    } catch (err) {
      return (err as Error).message;
    }
  }

  private async collect<P>(
    round: number,
    phase: 'fit' | 'evaluate',
    nodes: string[],
    handle: (node: string, a: Answer<P>) => void,
    send: () => Promise<void>,
  ) {
    const collector = new RoundCollector<Answer<P>>(nodes, this.spec.settings.round_timeout_s * 1000, this.signal, handle);
    const unregister = this.deps.router.register(this.spec.task_id, round, phase, collector);
    try {
      await this.ensurePackage(nodes);
      await send();
      return await collector.done;
    } finally {
      unregister();
    }
  }

  /**
   * A registry outage at the end of a task is waited out for a while (the
   * registry is remote when it is MLflow); if it lasts, the task fails, and
   * the trained weights stay in the last round's checkpoint.
   */
  private async withRetries<T>(what: string, lastRound: number, fn: () => Promise<T>): Promise<T> {
    const { REGISTRATION_ATTEMPTS: attempts, REGISTRATION_RETRY_S: baseS } = this.deps.config;
    for (let attempt = 1; ; attempt++) {
      this.checkStopped();
      try {
        return await fn();
      } catch (err) {
        if (attempt >= attempts) {
          throw new TaskFailure(`could not ${what} after ${attempts} attempts (${(err as Error).message}); the trained weights are kept in the checkpoint of round ${lastRound}`);
        }
        this.log.warn(`could not ${what} (attempt ${attempt} of ${attempts}): ${(err as Error).message}`);
        await this.pause(baseS * 1000 * 2 ** (attempt - 1));
      }
    }
  }

  /** Registers the trained model once: a new version of trained_<model_name>; a resumed task finds its own. */
  private async register(weights: NamedTensors): Promise<TaskResult> {
    const { spec, deps } = this;
    const all = await deps.rounds.figures(spec.task_id);
    const last = all[all.length - 1];
    if (!last) throw new TaskFailure('no completed round to register a model from');
    const metrics = {
      eval_loss: last.eval_loss,
      eval_accuracy: last.eval_accuracy,
      eval_examples: last.eval_examples,
      train_loss: last.train_loss,
      rounds: all.length,
    };
    const name = `trained_${spec.model_name}`;
    const trained: ModelPackage = {
      ...this.pkg,
      manifest: { ...this.pkg.manifest, name },
      initialWeights: weights,
    };
    const tags = {
      use_case: spec.use_case,
      trained: 'true',
      task_id: String(spec.task_id),
      source_model: spec.model_name,
      source_version: String(spec.model_version),
      eval_accuracy: String(metrics.eval_accuracy),
      eval_loss: String(metrics.eval_loss),
      train_loss: String(metrics.train_loss),
      rounds: String(metrics.rounds),
    };
    const version = await this.withRetries(`register the trained model '${name}'`, metrics.rounds, async () => {
      const [existing] = await deps.registry.searchVersions({ name, tags: { task_id: tags.task_id } });
      if (existing) return existing;
      await deps.registry.createModel(name, { description: `${spec.model_name} trained federatedly`, tags: { use_case: spec.use_case } });
      const files = modelPackageFiles(trained);
      return deps.registry.createVersion(name, Object.entries(files).map(([path, data]) => ({ path, data })), { tags, runId: deps.parentRunId() });
    });
    return { modelName: name, modelVersion: version.version, metrics };
  }
}
