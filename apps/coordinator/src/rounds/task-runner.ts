import { tmpdir } from 'node:os';
import { Logger } from '@nestjs/common';
import {
  CompletedRound,
  EvaluateResultPayload,
  FitResultPayload,
  Msg,
  RoundFigures,
  RoundInstructionPayload,
  Routes,
  StatsRequestPayload,
  StatsResultPayload,
  TaskSpec,
} from '@fl/contracts';
import {
  createStrategy,
  DifferentiallyPrivateStrategy,
  FedAvg,
  FedProx,
  FitAggregation,
  FitRes,
  GaussianNoise,
  hasServerState,
  QFFL_LOSS_METRIC,
  ServerStateError,
  StateMap,
  Strategy,
  StrategyParameterError,
  SteppingStrategy,
  weightedMean,
  WeightMap,
  withDifferentialPrivacy,
} from '@fl/aggregation';
import { LabeledData, seededPermutation } from '@fl/datasets';
import { MessageBus, sha256HexYielding } from '@fl/messaging';
import {
  addFeatureSums,
  allocateSafetensors,
  ComputedStandardization,
  decodeFeatureSums,
  decodePackageBundle,
  decodeSafetensors,
  encodePackageBundleYielding,
  encodeSafetensors,
  FeatureSums,
  createModelRunner,
  modelPackageFilesYielding,
  ModelPackage,
  ModelRunner,
  NamedTensors,
  needsFederatedStatistics,
  readModelPackage,
  safetensorsLayout,
  sha256Hex,
  standardization,
  withStandardization,
} from '@fl/models';
import { ModelRegistry } from '@fl/registry';
import { collectGarbage, isDatabaseUnavailable, PlatformMetrics, preciseNow, TaskLogger } from '@fl/runtime';
import { CoordinatorConfig } from '../config';
import { strategyFitConfig } from './fit-config';
import { EdgeWorkerRegistry, OnlineNode } from '../nodes/node-registry.service';
import { Answer, CollectPhase, ResultRouter } from './result-router';
import { NodeRoundFigures } from '../tracking/task-tracking';
import { RoundCollector } from './round-collector';
import { Checkpoint, ParticipantRecord, RoundsRepository } from './rounds.repository';
import { decodeStrategyState, strategyStateSegments, StrategyStateError } from './strategy-state';
import { PrivacyBudget, PrivacyBudgetReached } from './privacy-budget';
import { ServerEvaluation } from './server-evaluation';
import { InPlaceFedAvg } from './in-place-fedavg';

/** How often, at most, a cancel recorded in the database is looked up between rounds. */
const CANCEL_CHECK_INTERVAL_MS = 1000;

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
  /** A round completed and stored; its event goes to the gateway behind the rounds (RoundEvents). */
  onRound: (round: number, figures: RoundFigures, nodes: NodeRoundFigures[]) => void;
  /**
   * A task resumed: its completed rounds, oldest first. The coordinator that completed them may have
   * died before the broker confirmed their events, so they are sent again (the gateway ignores duplicates).
   */
  onResumed: (rounds: CompletedRound[]) => void;
  metrics: PlatformMetrics;
  /** The tracker run the trained model's artifacts are logged under, if any. */
  parentRunId: () => string | undefined;
  /** Whether a cancel was recorded for the task: looked up between rounds (at most once a second), in case its message went astray. */
  cancelRequested: () => Promise<boolean>;
  /** The operator's held-out data, if any: each round's new weights are evaluated on it too. */
  serverEvaluation?: Pick<ServerEvaluation, 'dataFor'>;
}

export interface TaskResult {
  modelName: string;
  modelVersion: number;
  metrics: { eval_loss: number; eval_accuracy: number; eval_examples: number; train_loss: number; rounds: number; epsilon?: number; delta?: number };
  /** Why the task stopped before its last round (its privacy budget), if it did. */
  reason?: string;
}

/**
 * Global weights as safetensors bytes (what is sent and stored), decoded
 * only when needed (views on the bytes where aligned); their SHA-256 once
 * computed.
 */
class GlobalWeights {
  private decoded?: NamedTensors;

  constructor(
    readonly buf: Buffer,
    public sha256?: string,
  ) {}

  get tensors(): NamedTensors {
    return (this.decoded ??= decodeSafetensors(this.buf).tensors as NamedTensors);
  }
}

/** FedAvg and FedProx: the new weights are the average, no server step. */
function isPlainAverage(strategy: Strategy): boolean {
  return strategy.constructor === FedAvg || strategy.constructor === FedProx;
}

/**
 * The strategy that aggregates: with local differential privacy the workers
 * clip and noise their own updates, and the coordinator aggregates with the
 * inner strategy unchanged (so a large model folds in place as without privacy).
 */
function aggregatingStrategy(strategy: Strategy): Strategy {
  return strategy instanceof DifferentiallyPrivateStrategy && strategy.privacy.mode === 'local' ? strategy.inner : strategy;
}

/** A round's figures for one worker, made when first needed. */
function nodeFigures(perNode: Map<string, NodeRoundFigures>, node: string): NodeRoundFigures {
  return perNode.get(node) ?? perNode.set(node, { node }).get(node)!;
}

function sha256Of(g: GlobalWeights): string {
  return (g.sha256 ??= sha256Hex(g.buf));
}

/** One round's aggregation of the updates, by the strategy or, for large models, in place (InPlaceFedAvg, then the strategy's step in place). */
interface RoundFold {
  /** Whether the round's server state, if any, is the runner's own, shared with the strategy, not copied (large models: see serverState). */
  readonly sharesState: boolean;
  /** Whether the global weights may be let go once sent (InPlaceFedAvg and the robust rules need only their layout; a server step or a norm bound needs the weights). */
  readonly letsGo: boolean;
  /** Whether the model is large (LARGE_MODEL_BYTES): memory freed by the round is given back at once (collectGarbage). */
  readonly large: boolean;
  readonly updates: number;
  readonly examples: number;
  /**
   * Throws (e.g. UpdateRejectedError) when the update is not used; where a
   * large update is checked and added a slice at a time (InPlaceFedAvg,
   * FitAggregation.addAsync), returns a promise that rejects instead.
   */
  add(node: string, p: FitResultPayload, attachment: Buffer, registeredExamples: number | undefined): void | Promise<void>;
  /** The new global weights; a large model's server step lets the event loop run (the connection's heartbeats) as it goes. */
  finish(): GlobalWeights | Promise<GlobalWeights>;
  /** A large model's sums faulted in a slice at a time (FitAggregation.prefault), once the weights have gone out. */
  prefault(): Promise<void>;
  dispose(): void;
}

/**
 * A round's fit phase: the sites chosen, the fold their updates go into as
 * they arrive, and how each answered. Collected by the round's own broadcast,
 * or (chained evaluation) by the last round's, whose evaluation it carries.
 */
interface FitPhase {
  round: number;
  started: Date;
  /** The same moment as ISO 8601 with microseconds: the round's stored start (rounds of a few milliseconds are timed from it). */
  startedAt: string;
  /** The workers online when the sites were chosen; the round's evaluators are sampled from them. */
  online: OnlineNode[];
  /** How many of them can train (the sampling population, for the privacy accounting). */
  population: number;
  chosen: string[];
  /** The global weights the fit sends: an answer trained from others is an earlier instruction's. */
  weightsSha: string;
  strategy: Strategy;
  fold: RoundFold;
  records: ParticipantRecord[];
  trainLosses: { value: number; examples: number }[];
  problems: string[];
  perNode: Map<string, NodeRoundFigures>;
  /** The chosen sites that did not answer, once collected. */
  missing: string[];
  /**
   * The round's start row (RoundBook.started): written while its fit instruction goes out, or, for a fit
   * that went out with the last round's evaluation, with that round's end (settled once it is stored).
   */
  startRow?: Promise<void>;
}

/** How each worker took part in a round attempt, stored with the round's end (complete or fail): one commit per round, not one per phase. */
interface RoundBook {
  records: { fit: ParticipantRecord[]; evaluate: ParticipantRecord[] };
  /**
   * The round's start row, written while the fit instruction goes out: awaited
   * before anything that updates the row (the round's end), so that a failed
   * write still fails the round.
   */
  started: Promise<void>;
  /** Whether the round's end stored them already. */
  stored: boolean;
}

interface RoundOutcome {
  global: GlobalWeights;
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
  /** The package as sent to workers; a large model's is let go during the fit phase and read again from the registry when needed. */
  private bundle: Buffer | null = null;
  private bundleSha!: string;
  /** The global weights of the round about to run; a large model's are let go while its updates come in (see letGo). */
  private current: GlobalWeights | null = null;
  /**
   * The strategy's server state after the last completed round (empty for
   * stateless strategies). A large
   * model's is shared with the round's strategy, which steps it in place
   * (FedOpt's is twice the model: no copy); it is null while a round
   * may have changed it, and read back from the last checkpoint if that round
   * does not complete (serverStateFor).
   */
  private serverState: StateMap | null = new Map();
  /** Differentially private tasks: the privacy spent so far, and the budget. */
  private readonly privacy?: PrivacyBudget;
  /** When the database was last asked whether a cancel is recorded (checkCancelRecorded). */
  private cancelCheckedAt = -Infinity;
  /**
   * The sites that kept the weights they evaluated, for the next round's fit (the evaluation's
   * `keep_weights`); that fit goes without the weights when every site asked to fit is among them.
   * Spent by the next fit broadcast, whether or not it used them.
   */
  private keptBy?: { sha256: string; nodes: Set<string> };
  /** The next round's fit, collected with the last round's evaluation (CHAINED_EVALUATION): taken by that round's first attempt. */
  private chained?: FitPhase;
  /** Server-side evaluation: the operator's rows of the use case and a runner of the package, made at the first round. */
  private serverEval?: { data: LabeledData; runner: ModelRunner } | null;

  constructor(
    private readonly deps: TaskRunnerDeps,
    private readonly spec: TaskSpec,
    private readonly signal: AbortSignal,
  ) {
    this.log = new TaskLogger(new Logger(TaskRunner.name), { task_id: spec.task_id, correlation_id: spec.correlation_id });
    if (spec.settings.privacy) this.privacy = new PrivacyBudget(spec.settings.privacy);
  }

  private envelope(round: number) {
    return { task_id: this.spec.task_id, round, sender: this.deps.config.COORDINATOR_ID, correlation_id: this.spec.correlation_id };
  }

  private checkStopped(): void {
    if (this.signal.aborted) throw new TaskStopped((this.signal.reason as TaskStopped['why']) ?? 'cancelled');
  }

  async run(): Promise<TaskResult> {
    try {
      return await this.runRounds();
    } finally {
      // A chained fit not taken (the task stopped between rounds): its fold goes.
      this.chained?.fold.dispose();
      this.chained = undefined;
      await this.serverEval?.runner.release().catch(() => undefined);
    }
  }

  private async runRounds(): Promise<TaskResult> {
    const { spec } = this;
    const probe = this.newStrategy();
    await this.preparePackage();
    let firstRound = 1;
    const checkpoint = await this.deps.rounds.latestCheckpoint(spec.task_id);
    if (checkpoint) {
      this.current = new GlobalWeights(checkpoint.weights, checkpoint.sha256);
      firstRound = checkpoint.round + 1;
      this.restoreServerState(probe, checkpoint, this.current.tensors);
      this.log.log(`resuming after round ${checkpoint.round} from its checkpoint`);
      this.deps.onResumed(await this.deps.rounds.completedRounds(spec.task_id));
    } else this.current = await this.packageWeights();
    let stoppedEarly: string | undefined;
    for (let round = firstRound; round <= spec.num_global_iterations; round++) {
      let out: RoundOutcome;
      try {
        out = await this.runRoundWithRetries(round);
      } catch (err) {
        if (!(err instanceof PrivacyBudgetReached)) throw err;
        // Nothing trained yet: there is no model to register.
        if (round === 1) throw new TaskFailure(err.message);
        stoppedEarly = err.message;
        this.log.log(`stopping before round ${round}: ${err.message}`);
        break;
      }
      this.current = out.global;
      this.deps.onRound(round, out.figures, out.nodes);
    }
    const last = this.current ?? (await this.globalFor(firstRound));
    return this.register(last.tensors, stoppedEarly);
  }

  /**
   * Loads the package from the registry and makes the bundle the workers get;
   * the package's weights are then only in the bundle (packageWeights), not
   * held a second time decoded.
   */
  private async preparePackage(): Promise<Buffer> {
    await this.loadPackage();
    if (needsFederatedStatistics(this.pkg)) await this.standardize();
    this.pkg = { ...this.pkg, initialWeights: new Map() };
    return this.bundle!;
  }

  /**
   * The package's initial weights: the bundle's entry, not a copy, where its
   * tensors can be views on it (4-byte aligned); else copied once into a
   * buffer of their own, so that decoding them does not copy them again while
   * the entry keeps the whole bundle in memory (a large model would then be
   * held three times).
   */
  private async packageWeights(): Promise<GlobalWeights> {
    const entry = decodePackageBundle(this.bundle!)[this.pkg.manifest.weights];
    let weights = entry;
    if (entry.byteOffset % Float32Array.BYTES_PER_ELEMENT !== 0) {
      weights = Buffer.allocUnsafeSlow(entry.length);
      entry.copy(weights);
    }
    // Hashed here, a slice at a time (a large model's take a second per GiB), for the instructions and the checkpoint.
    return new GlobalWeights(weights, await sha256HexYielding(weights));
  }

  /** The global weights for `round`: those in hand, else (a large model's, let go during a round that is run again) read back from the last checkpoint or the package. */
  private async globalFor(round: number): Promise<GlobalWeights> {
    if (this.current) return this.current;
    const checkpoint = await this.deps.rounds.latestCheckpoint(this.spec.task_id);
    if (checkpoint) {
      if (checkpoint.round !== round - 1) throw new TaskFailure(`round ${round}: the last checkpoint is of round ${checkpoint.round}, not of round ${round - 1}`);
      this.current = new GlobalWeights(checkpoint.weights, checkpoint.sha256);
      this.log.log(`round ${round}: global weights read back from the checkpoint of round ${checkpoint.round} (sha256 ${checkpoint.sha256})`);
    } else {
      if (!this.bundle) await this.preparePackage();
      this.current = await this.packageWeights();
      this.log.log(`round ${round}: global weights read back from the model package (sha256 ${sha256Of(this.current)})`);
    }
    return this.current;
  }

  /**
   * Whether a round of this strategy folds in place (InPlaceFedAvg): large
   * models; FedAvg or FedProx (whose server step is the average), or FedAvgM
   * and the FedOpt family, whose step then writes over the average
   * (SteppingStrategy.stepInPlace); with a norm bound too (the global weights are then
   * kept to measure the updates against); not with central differential privacy. (The robust
   * rules hold at most LARGE_MODEL_BYTES of updates, the rest on disk: see newStrategy;
   * QFedAvg and central differential privacy sum in float64 beside the global weights,
   * and write the new weights into the buffer they are sent from: see beginFold.)
   */
  private foldsInPlace(strategy: Strategy, global: GlobalWeights): boolean {
    if (global.buf.length < this.deps.config.LARGE_MODEL_BYTES) return false;
    const linear = isPlainAverage(strategy) || strategy instanceof SteppingStrategy;
    if (linear) return true;
    if (!strategy.streaming) {
      this.log.log(`a model of ${global.buf.length} bytes with ${strategy.name}: at most ${this.deps.config.LARGE_MODEL_BYTES} bytes of updates in memory, the others in ${this.deps.config.AGGREGATION_SPILL_DIR ?? tmpdir()}`);
      return false;
    }
    this.log.log(`a model of ${global.buf.length} bytes with ${strategy.name}: float64 sums beside the global weights (the model about four times)`);
    return false;
  }

  /**
   * After a large model's fit broadcast: the package and, where the
   * aggregation does not need them (RoundFold.letsGo: FedAvg and FedProx in
   * place, the robust rules without a norm bound), the global weights are let
   * go, so that the coordinator holds only the sum or the update being
   * received while the updates come in. Read back if needed (globalFor,
   * ensurePackage).
   */
  private letGo(weights: boolean): void {
    if (weights) this.current = null;
    this.bundle = null;
  }

  /**
   * A round short of answers (a site stalled or died) is run again from the
   * same global weights, up to ROUND_RETRIES times; then the task fails with
   * the last attempt's reason, which names the missing sites.
   */
  private runRoundWithRetries(round: number): Promise<RoundOutcome> {
    return this.withRoundRetries(`round ${round}`, async () => {
      await this.globalFor(round);
      await this.serverStateFor(round);
      return this.runRound(round);
    });
  }

  /**
   * The server state a round starts from: the one in hand, else (a large
   * model's, stepped in place by an attempt that did not complete) read back
   * from the last checkpoint, without its weights; none before the first
   * completed round.
   */
  private async serverStateFor(round: number): Promise<StateMap> {
    if (this.serverState) return this.serverState;
    const checkpoint = await this.deps.rounds.latestCheckpoint(this.spec.task_id, { weights: false });
    if (checkpoint && checkpoint.round !== round - 1) throw new TaskFailure(`round ${round}: the last checkpoint is of round ${checkpoint.round}, not of round ${round - 1}`);
    const saved = checkpoint?.strategy_state;
    try {
      this.serverState = saved ? PrivacyBudget.without(decodeStrategyState(this.newStrategy().name, saved)) : new Map();
    } catch (err) {
      if (err instanceof StrategyStateError) throw new TaskFailure(`the checkpoint of round ${checkpoint!.round} cannot be resumed: ${err.message}`);
      throw err;
    }
    this.log.log(`round ${round}: server state read back from ${checkpoint ? `the checkpoint of round ${checkpoint.round}` : 'nothing (no round completed yet)'}`);
    return this.serverState;
  }

  /**
   * A cancel recorded for the task whose message went astray: looked up before
   * a round, at most once a second (quick rounds would otherwise add a query each;
   * the cancel message itself stops the task at once).
   */
  private async checkCancelRecorded(): Promise<void> {
    const now = Date.now();
    if (now - this.cancelCheckedAt < CANCEL_CHECK_INTERVAL_MS) return;
    this.cancelCheckedAt = now;
    if (await this.deps.cancelRequested()) throw new TaskStopped('cancelled');
  }

  private async withRoundRetries<T>(what: string, attempt: () => Promise<T>): Promise<T> {
    const retries = this.deps.config.ROUND_RETRIES;
    for (let n = 1; ; n++) {
      this.checkStopped();
      await this.checkCancelRecorded();
      try {
        return await attempt();
      } catch (err) {
        if (!(err instanceof RoundShortfall) || n > retries) {
          if (err instanceof RoundShortfall && retries > 0) throw new RoundShortfall(`${err.message} (after ${retries} retr${retries === 1 ? 'y' : 'ies'} of the round)`);
          throw err;
        }
        this.log.warn(`${err.message}; running ${what} again (retry ${n} of ${retries})`);
      }
    }
  }

  /**
   * The model standardises its inputs with statistics of the task's data:
   * before round 1 every online site of the use case sends the count, sums and
   * sums of squares of its training rows per input (never rows); their total
   * gives mean and std, stored with the task (a resumed task keeps its own)
   * and put into the package's graphs and manifest, so that the trained model
   * carries them.
   */
  private async standardize(): Promise<void> {
    const { task_id } = this.spec;
    let stats = await this.deps.rounds.standardization(task_id);
    if (stats) this.log.log(`standardising with the statistics computed at the task's start (${stats.examples} examples from ${stats.sites} sites)`);
    else {
      stats = await this.withRoundRetries('the standardisation statistics', () => this.collectStatistics());
      await this.deps.rounds.saveStandardization(task_id, stats);
      this.log.log(`standardisation statistics computed from ${stats.examples} examples at ${stats.sites} sites`);
    }
    try {
      this.pkg = withStandardization(this.pkg, stats, task_id);
    } catch (err) {
      throw new TaskFailure(`the standardisation statistics do not fit model '${this.spec.model_name}': ${(err as Error).message}`);
    }
    this.bundle = await encodePackageBundleYielding(await modelPackageFilesYielding(this.pkg));
    this.bundleSha = await sha256HexYielding(this.bundle);
  }

  private async collectStatistics(): Promise<ComputedStandardization> {
    const s = this.spec.settings;
    const norm = this.pkg.manifest.normalization!;
    const features = norm.mean.length;
    const online = (await this.awaitWorkers(0)).filter((n) => n.train > 0);
    const registered = new Map(online.map((n) => [n.name, n.train]));
    const sites = online.map((n) => n.name);
    const parts: FeatureSums[] = [];
    const problems: string[] = [];
    const answers = await this.collect<StatsResultPayload>(
      0,
      'stats',
      sites,
      (node, { payload: p, attachment }) => {
        if (p.status !== 'ok') return void problems.push(`${node}: ${p.error ?? 'unknown error'}`);
        if (p.examples > (registered.get(node) ?? 0)) return void problems.push(`${node}: sums over ${p.examples} rows, but it registered ${registered.get(node)} training rows`);
        try {
          parts.push(decodeFeatureSums(attachment, p.examples, features));
        } catch (err) {
          problems.push(`${node}: ${(err as Error).message}`);
        }
      },
      async () => {
        const payload: StatsRequestPayload = {
          ...this.envelope(0),
          use_case: this.spec.use_case,
          participants: sites,
          features,
          reply_to: Routes.coordinator(this.deps.config.COORDINATOR_ID, Msg.RoundStatsResult),
        };
        await this.deps.bus.publish(Routes.useCaseWorkers(this.spec.use_case, Msg.RoundStats), { name: Msg.RoundStats, payload: { ...payload } });
      },
      false,
    );
    if (problems.length) this.log.warn(`standardisation statistics: unusable answers: ${problems.join('; ')}`);
    if (parts.length < s.min_fit_clients) {
      const missing = answers.missing.length ? `; no answer within ${s.round_timeout_s} s from ${answers.missing.join(', ')}` : '';
      const bad = problems.length ? `; unusable: ${problems.join('; ')}` : '';
      throw new RoundShortfall(`standardisation statistics: ${parts.length} usable answer(s) from ${sites.length} site(s), min_fit_clients is ${s.min_fit_clients}${missing}${bad}`);
    }
    const total = addFeatureSums(parts);
    return { ...standardization(total, norm.statistics!.standardize), examples: total.count, sites: parts.length };
  }

  /** The task's strategy, a new instance per round attempt; a name or parameter the registry refuses fails the task naming it. */
  private newStrategy(): Strategy {
    const s = this.spec.settings;
    // Tasks stored before strategies could be chosen carry no strategy_params: FedAvg, whose parameters are the sampling ones.
    const params = s.strategy_params ?? { min_fit_clients: s.min_fit_clients, fraction_fit: s.fraction_fit };
    let strategy: Strategy;
    try {
      const spill = { memoryBudgetBytes: this.deps.config.LARGE_MODEL_BYTES, directory: this.deps.config.AGGREGATION_SPILL_DIR };
      strategy = createStrategy(s.strategy, params, { seed: s.seed, maxUpdateNorm: s.max_update_norm, spill });
    } catch (err) {
      if (err instanceof StrategyParameterError) throw new TaskFailure(err.message);
      throw err;
    }
    if (!this.privacy) return strategy;
    try {
      // Noise from the operating system's generator: a seeded one could be searched for and subtracted.
      return withDifferentialPrivacy(strategy, this.privacy.parameters, GaussianNoise.secure());
    } catch (err) {
      throw new TaskFailure(`differential privacy: ${(err as Error).message}`);
    }
  }

  /**
   * The server-side state stored with the checkpoint. A checkpoint written
   * before strategies kept state has none: the state then starts afresh, said
   * in the log. State that does not fit the strategy or the model fails the task.
   */
  private restoreServerState(strategy: Strategy, checkpoint: Checkpoint, weights: NamedTensors): void {
    if (this.privacy) {
      try {
        const saved = checkpoint.strategy_state ? decodeStrategyState(strategy.name, checkpoint.strategy_state) : new Map<string, Float64Array>();
        this.privacy.restore(saved, checkpoint.round);
      } catch (err) {
        throw new TaskFailure(`the checkpoint of round ${checkpoint.round} cannot be resumed: ${(err as Error).message}`);
      }
    }
    if (!hasServerState(strategy)) return;
    if (!checkpoint.strategy_state) {
      this.log.warn(`the checkpoint of round ${checkpoint.round} holds no ${strategy.name} state: its server-side state starts afresh`);
      return;
    }
    try {
      const state = PrivacyBudget.without(decodeStrategyState(strategy.name, checkpoint.strategy_state));
      // Only checked here (the probe strategy is dropped): shared, not copied, as a large model's state can be twice the model.
      strategy.loadServerState(state, weights as WeightMap, { share: true });
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
    // A copy of the whole model: a large one's is made a slice at a time, letting the connection's heartbeats through.
    this.bundle = await encodePackageBundleYielding(files);
    this.bundleSha = await sha256HexYielding(this.bundle);
  }

  /**
   * The workers online that can train, and the setting they fall short of for a fit to start: fewer than
   * min_fit_clients can train, or fewer than min_available_clients are online (null: a fit can start).
   */
  private fitReadiness(online: OnlineNode[]): { trainable: OnlineNode[]; short: ['min_fit_clients' | 'min_available_clients', number] | null } {
    const s = this.spec.settings;
    const trainable = online.filter((n) => n.train > 0);
    const available = s.strategy_params?.min_available_clients ?? 1;
    if (trainable.length < s.min_fit_clients) return { trainable, short: ['min_fit_clients', s.min_fit_clients] };
    return { trainable, short: online.length < available ? ['min_available_clients', available] : null };
  }

  /** Online workers for the use case; waits (up to WORKER_WAIT_S) until a fit can start with them (fitReadiness). */
  private async awaitWorkers(round: number): Promise<OnlineNode[]> {
    const deadline = Date.now() + this.deps.config.WORKER_WAIT_S * 1000;
    for (;;) {
      this.checkStopped();
      const online = await this.deps.workers.online(this.spec.use_case);
      const { trainable: fit, short } = this.fitReadiness(online);
      if (!short) return online;
      if (Date.now() >= deadline) {
        const names = fit.map((n) => n.name).join(', ') || 'none';
        const [what, value] = short;
        throw new TaskFailure(
          `round ${round}: ${fit.length} edge worker(s) serving use case '${this.spec.use_case}' are online (${names}) but ${what} is ${value}; ` +
            `start more workers or lower ${what}`,
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

  /**
   * Flower's evaluation sampling: max(min_evaluate_clients, fraction_evaluate * available)
   * of the workers holding held-out rows (all of them for tasks that give neither), seeded
   * per round apart from the fit sample. At least one: the round's figures are an evaluation.
   */
  private sampleEvaluators(candidates: OnlineNode[], round: number): string[] {
    const p = this.spec.settings.strategy_params ?? {};
    const fraction = p.fraction_evaluate ?? 1;
    const want = Math.min(candidates.length, Math.max(1, p.min_evaluate_clients ?? 1, Math.ceil(fraction * candidates.length)));
    if (want === candidates.length) return candidates.map((n) => n.name);
    const perm = seededPermutation(candidates.length, this.spec.settings.seed * 100_019 + 7_919 * round + 1);
    return Array.from(perm.subarray(0, want), (i) => candidates[i].name).sort((a, b) => a.localeCompare(b));
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
    if (missing.length === 0) return;
    const bundle = this.bundle ?? (await this.preparePackage());
    const send = (node: string) =>
      this.deps.bus.publish(Routes.worker(node, Msg.ModelPackage), { name: Msg.ModelPackage, payload: { ...this.envelope(0), package_sha256: this.bundleSha }, attachment: bundle, attachmentSha256: this.bundleSha });
    // A large package goes to one worker after another: each transfer has its chunks in flight, copied into messages.
    if (bundle.length < this.deps.config.LARGE_MODEL_BYTES) await Promise.all(missing.map(send));
    else for (const node of missing) await send(node);
    for (const node of missing) this.packageSentTo.add(node);
  }

  private async broadcast(
    msg: typeof Msg.RoundFit | typeof Msg.RoundEvaluate,
    round: number,
    participants: string[],
    weights: GlobalWeights,
    opts: {
      strategy?: Strategy;
      /** A fit that carries the evaluation of `round`'s weights by these sites. */
      evaluation?: { round: number; evaluators: string[] };
      /** An evaluation whose weights the next round's fit has already carried: the sites need not keep them. */
      nextFitSent?: boolean;
    } = {},
  ): Promise<void> {
    const { strategy, evaluation } = opts;
    const s = this.spec.settings;
    const sha = sha256Of(weights);
    const kept = this.keptBy;
    if (msg === Msg.RoundFit) this.keptBy = undefined;
    // Each site then receives the model once per round: the fit's weights are those the last evaluation sent.
    const fromKept = msg === Msg.RoundFit && kept?.sha256 === sha && participants.every((n) => kept.nodes.has(n));
    // The evaluated weights start the next round; a large model's are not held at the sites (their memory is the model's).
    const keep = msg === Msg.RoundEvaluate && !opts.nextFitSent && round < this.spec.num_global_iterations && weights.buf.length < this.deps.config.LARGE_MODEL_BYTES;
    if (keep) this.keptBy = { sha256: sha, nodes: new Set() };
    const payload: RoundInstructionPayload = {
      ...this.envelope(round),
      use_case: this.spec.use_case,
      participants,
      package_sha256: this.bundleSha,
      weights_sha256: sha,
      ...(keep ? { keep_weights: true } : {}),
      ...(fromKept ? { kept_weights: true } : {}),
      ...(evaluation ? { evaluates_round: evaluation.round, evaluators: evaluation.evaluators } : {}),
      reply_to: Routes.coordinator(this.deps.config.COORDINATOR_ID, msg === Msg.RoundFit ? Msg.RoundFitResult : Msg.RoundEvaluateResult),
      ...(msg === Msg.RoundFit
        ? { config: { local_epochs: s.local_epochs, batch_size: s.batch_size, learning_rate: s.learning_rate, seed: s.seed + round, ...this.privacy?.workerConfig(), ...strategyFitConfig(strategy?.fitConfig(round)) } }
        : {}),
    };
    await this.deps.bus.publish(Routes.useCaseWorkers(this.spec.use_case, msg), { name: msg, payload: { ...payload }, ...(fromKept ? {} : { attachment: weights.buf, attachmentSha256: sha }) });
  }

  private async runRound(round: number): Promise<RoundOutcome> {
    const { spec, deps } = this;
    // The fit collected with the last round's evaluation, if any: taken once, a retry of the round sends its own.
    const chained = this.chained?.round === round ? this.chained : undefined;
    this.chained = undefined;
    const phase = chained ?? (await this.newFitPhase(round));
    const book: RoundBook = { records: { fit: phase.records, evaluate: [] }, started: (phase.startRow ??= this.startRow(round, phase.chosen, phase.startedAt)), stored: false };
    try {
      if (!chained) {
        const fit = await this.collect<FitResultPayload>(
          round,
          'fit',
          phase.chosen,
          this.fitHandler(phase),
          async () => {
            await this.broadcast(Msg.RoundFit, round, phase.chosen, this.current!, { strategy: phase.strategy });
            if (phase.fold.large) {
              this.letGo(phase.fold.letsGo);
              collectGarbage();
              // Once the global weights are gone where the fold does not need them (FedAvg): the sums and the weights are
              // not held together. Updates arrive only after a worker has received the weights and sent its own back.
              await phase.fold.prefault();
            }
          },
          true,
          this.staleFor(phase),
        );
        phase.missing = fit.missing;
      }
      return await this.runPhases(phase, book);
    } catch (err) {
      // A round that ends otherwise than completed or failed (stopped, its aggregation failed) still records who answered how;
      // not once another coordinator holds the task (it runs the round again and records its own attempt).
      const leaseLost = this.signal.aborted && this.signal.reason === 'lease-lost';
      if (!book.stored && !leaseLost) await book.started.then(() => deps.rounds.participants(spec.task_id, round, book.records)).catch(() => undefined);
      throw err;
    } finally {
      phase.fold.dispose();
    }
  }

  /** Writes a round's start row while its fit instruction goes out; awaited before the round's end is stored (RoundBook.started). */
  private startRow(round: number, chosen: string[], started: string): Promise<void> {
    const written = this.deps.rounds.start(this.spec.task_id, round, chosen, started);
    written.catch(() => undefined);
    return written;
  }

  /** A round's fit phase from the global weights in hand: the sites online now, sampled. */
  private async newFitPhase(round: number): Promise<FitPhase> {
    const started = preciseNow();
    const online = await this.awaitWorkers(round);
    const candidates = online.filter((n) => n.train > 0);
    const chosen = this.sample(candidates, round).map((n) => n.name);
    // Before anything is sent: a round that would take epsilon beyond the budget is not run.
    this.privacy?.checkNextRound(round, chosen.length, candidates.length);
    // No reference to the global weights in this frame: a large model's are let go during the fit phase.
    return this.beginFitPhase(round, started, online, candidates.length, chosen);
  }

  /**
   * A fit phase with a new strategy per attempt, from the given global weights and server state (those
   * in hand unless given), so that a round run again does not step the server state twice.
   */
  private beginFitPhase(round: number, started: { date: Date; iso: string }, online: OnlineNode[], population: number, chosen: string[], global?: GlobalWeights, state?: StateMap): FitPhase {
    const strategy = this.newStrategy();
    const weightsSha = sha256Of(global ?? this.current!);
    const fold = this.beginFold(round, strategy, chosen.length, global, state);
    return { round, started: started.date, startedAt: started.iso, online, population, chosen, weightsSha, strategy, fold, records: [], trainLosses: [], problems: [], perNode: new Map(), missing: [] };
  }

  /**
   * Folds each fit answer into the phase's aggregate as it arrives (streaming
   * aggregation), and notes how the site answered. Where the fold takes the
   * update a slice at a time, the handler's promise settles once it is in
   * (the bus acknowledges the message, and lets the next large one into
   * memory, only then).
   */
  private fitHandler(phase: FitPhase): (node: string, a: Answer<FitResultPayload>) => void | Promise<void> {
    const registered = new Map(phase.online.map((n) => [n.name, n.train]));
    return (node, { payload: p, attachment, attachmentSha256 }) => {
      const reason = this.foldUpdate(phase.fold, node, p, attachment, attachmentSha256, registered.get(node));
      if (reason instanceof Promise) return reason.then((r) => this.noteFit(phase, node, p, r));
      this.noteFit(phase, node, p, reason);
    };
  }

  /** How a site answered a fit: its update folded in (`reason` null) or not, and why. */
  private noteFit(phase: FitPhase, node: string, p: FitResultPayload, reason: string | null): void {
    // A large update is released once folded (or stored on disk): its memory goes back before the next arrives.
    if (phase.fold.large) collectGarbage();
    if (p.status === 'error') this.forgetPackage(node);
    if (reason) {
      phase.problems.push(`${node}: ${reason}`);
      phase.records.push({ node, status: p.status === 'error' ? 'failed' : 'rejected', examples: p.examples, reason });
      return;
    }
    phase.trainLosses.push({ value: p.train_loss, examples: p.examples });
    nodeFigures(phase.perNode, node).fit = { examples: p.examples, loss: p.train_loss };
    phase.records.push({ node, status: 'received', examples: p.examples, loss: p.train_loss });
  }

  /** An answer naming other global weights than the phase sent answers an earlier instruction for the same round (one before a retry). */
  private staleFor(phase: FitPhase): (a: Answer<FitResultPayload>) => boolean {
    return ({ payload: p }) => {
      const stale = p.trained_from !== undefined && p.trained_from !== phase.weightsSha;
      if (stale) this.log.log(`round ${phase.round}: an answer from ${p.sender} trained from other weights (${p.trained_from!.slice(0, 12)}…) is an earlier instruction's: ignored`);
      return stale;
    };
  }

  /**
   * The next round's fit phase, begun before this round's evaluation so that
   * one instruction carries both (CHAINED_EVALUATION): each site then gets one
   * instruction and sends one answer per round instead of two. Only where the
   * model is below LARGE_MODEL_BYTES, every site to evaluate is also chosen to
   * fit, and the next round may run now (enough sites online, within the
   * privacy budget); otherwise undefined, and the evaluation is its own phase.
   */
  private async chainNext(round: number, next: GlobalWeights, state: StateMap, evaluators: string[]): Promise<FitPhase | undefined> {
    const { spec, deps } = this;
    if (deps.config.CHAINED_EVALUATION !== 'on' || round >= spec.num_global_iterations || evaluators.length === 0) return undefined;
    if (next.buf.length >= deps.config.LARGE_MODEL_BYTES) return undefined;
    const started = preciseNow();
    const online = await deps.workers.online(spec.use_case);
    const { trainable: candidates, short } = this.fitReadiness(online);
    if (short) return undefined;
    const chosen = this.sample(candidates, round + 1).map((n) => n.name);
    const fitting = new Set(chosen);
    if (!evaluators.every((n) => fitting.has(n))) return undefined;
    try {
      this.privacy?.checkNextRound(round + 1, chosen.length, candidates.length);
    } catch (err) {
      if (err instanceof PrivacyBudgetReached) return undefined;
      throw err;
    }
    return this.beginFitPhase(round + 1, started, online, candidates.length, chosen, next, state);
  }

  /** The fold of a round's updates, from the given global weights and server state (those in hand unless the next round is chained). */
  private beginFold(round: number, task: Strategy, sampled: number, global = this.current!, state = this.serverState ?? new Map<string, Float64Array>()): RoundFold {
    const large = global.buf.length >= this.deps.config.LARGE_MODEL_BYTES;
    const strategy = aggregatingStrategy(task);
    if (this.foldsInPlace(strategy, global)) {
      const maxL2Norm = this.spec.settings.max_update_norm;
      const sum = new InPlaceFedAvg(safetensorsLayout(global.buf), maxL2Norm === undefined ? {} : { bound: { maxL2Norm, reference: global.tensors } });
      const plain = isPlainAverage(strategy);
      if (!plain) {
        // The step changes the state it is given: from here until the round is stored, the runner's copy is not the last completed round's.
        if (hasServerState(strategy) && state.size) strategy.loadServerState(state, global.tensors as WeightMap, { share: true });
        this.serverState = null;
      }
      return {
        sharesState: true,
        letsGo: plain && maxL2Norm === undefined,
        large,
        get updates() { return sum.updates; },
        get examples() { return sum.examples; },
        // A large update, checked and folded a slice at a time (about a second per GiB).
        add: (_node, p, attachment, registered) => sum.addAsync(attachment, p.examples, registered),
        prefault: () => sum.prefault(),
        finish: async () => {
          const average = sum.finish();
          const averages = new Map([...average.tensors].map(([name, t]) => [name, t.data]));
          if (strategy instanceof SteppingStrategy) await strategy.stepInPlace(round, this.current!.tensors as WeightMap, averages);
          return new GlobalWeights(average.buf);
        },
        dispose: () => sum.dispose(),
      };
    }
    // A large model's state is shared as in place (QFedAvg keeps none; differential privacy's inner strategy may, twice the model for FedOpt).
    if (hasServerState(strategy)) {
      if (state.size) strategy.loadServerState(state, global.tensors as WeightMap, { share: large });
      if (large) this.serverState = null;
    }
    // Only the layout is kept for the new weights' buffer: the closures below must not hold the global weights, which may be let go.
    const layout = large ? safetensorsLayout(global.buf) : null;
    // DP's fixed denominator: the number of workers asked, whether or not all answer.
    (strategy as Partial<{ setSampledClients(r: number, n: number): void }>).setSampledClients?.(round, sampled);
    const aggregator: FitAggregation = strategy.beginFit(round, global.tensors as WeightMap);
    // The robust rules keep the updates (on disk beyond LARGE_MODEL_BYTES) and only the weights' layout, unless a norm bound measures against them.
    const keepsOnlyLayout = !strategy.streaming && this.spec.settings.max_update_norm === undefined;
    return {
      sharesState: large,
      letsGo: large && keepsOnlyLayout,
      large,
      get updates() { return aggregator.updates; },
      get examples() { return aggregator.examples; },
      prefault: async () => {
        if (large) await aggregator.prefault?.();
      },
      add: (node, p, attachment, registeredExamples) => {
        const metrics = p.loss_before_fit !== undefined ? { [QFFL_LOSS_METRIC]: p.loss_before_fit } : undefined;
        const result: FitRes = { node, parameters: decodeSafetensors(attachment).tensors as WeightMap, numExamples: p.examples, registeredExamples, metrics };
        // QFedAvg and central DP check and add a large update in JavaScript, about a second per GiB here: a slice at a time.
        if (large && aggregator.addAsync) return aggregator.addAsync(result);
        aggregator.add(result);
      },
      // Encoded once, and the new weights kept only as views on the encoding. For a large model, the aggregation lets the
      // connection's heartbeats through, and writes the new weights straight into their safetensors buffer where it can
      // (QFedAvg, central DP): no copy. A buffer not written to costs nothing: its zeroed pages are mapped when first touched.
      finish: async () => {
        if (!layout || !aggregator.finishAsync) return new GlobalWeights(encodeSafetensors(aggregator.finish().parameters as NamedTensors));
        const out = allocateSafetensors(layout);
        const into = new Map([...out.tensors].map(([name, t]) => [name, t.data]));
        const result = await aggregator.finishAsync(into);
        const written = [...result.parameters].every(([name, t]) => t.data === into.get(name));
        return new GlobalWeights(written ? out.buf : encodeSafetensors(result.parameters as NamedTensors));
      },
      dispose: () => aggregator.dispose(),
    };
  }

  private async runPhases(phase: FitPhase, book: RoundBook): Promise<RoundOutcome> {
    const { spec, deps } = this;
    const s = spec.settings;
    const { round, strategy, chosen, fold: aggregator, records: fitRecords, problems } = phase;
    const evalRecords = book.records.evaluate;
    for (const node of phase.missing) fitRecords.push({ node, status: 'missing', reason: `no answer within ${s.round_timeout_s} s` });
    this.countAnswers('fit', fitRecords);
    this.checkStopped();
    if (aggregator.updates < s.min_fit_clients) {
      await this.failRound(round, book);
      const missing = phase.missing.length ? `; no answer within ${s.round_timeout_s} s from ${phase.missing.join(', ')}` : '';
      const bad = problems.length ? `; unusable: ${problems.join('; ')}` : '';
      throw new RoundShortfall(`round ${round}: ${aggregator.updates} usable update(s) from ${chosen.length} worker(s), min_fit_clients is ${s.min_fit_clients}${missing}${bad}`);
    }
    const participants = aggregator.updates;
    const examples = aggregator.examples;
    if (aggregator.large) {
      // The bus lets the last update go once its handler has returned, in callbacks already queued behind this one:
      // they run first, then its memory is given back, before the aggregation allocates the new weights.
      await new Promise((resolve) => setImmediate(resolve));
      collectGarbage();
    }
    let next: GlobalWeights;
    try {
      next = await aggregator.finish();
    } catch (err) {
      throw new TaskFailure(`round ${round}: ${strategy.name} could not aggregate ${participants} update(s): ${(err as Error).message}`);
    }
    if (aggregator.large) {
      collectGarbage();
      // Hashed here, letting the connection's heartbeats through (about a second per GiB), for the instructions and the checkpoint.
      next.sha256 ??= await sha256HexYielding(next.buf);
    }
    // Spent once the noised aggregate exists (the evaluation below sends it out), whether or not the round completes.
    this.privacy?.spend(chosen.length, phase.population);
    const server = await this.evaluateOnServer(round, next.tensors);
    // For a large model, the strategy's own buffers (twice its size for FedOpt): stored as they are, kept for the next round.
    const state = hasServerState(strategy) ? strategy.saveServerState({ share: aggregator.sharesState }) : new Map<string, Float64Array>();

    // Evaluate the new global weights on the held-out split of every worker online at the round's start.
    const evaluators = this.sampleEvaluators(phase.online.filter((n) => n.test > 0), round);
    const evals: { loss: number; accuracy: number; examples: number }[] = [];
    const evaluated = (node: string, p: EvaluateResultPayload) => {
      if (p.status === 'error') this.forgetPackage(node);
      if (p.status !== 'ok' || !(p.examples > 0) || !Number.isFinite(p.loss) || !Number.isFinite(p.accuracy)) {
        evalRecords.push({ node, status: 'failed', reason: p.error ?? 'unusable evaluation' });
        return;
      }
      evals.push({ loss: p.loss, accuracy: p.accuracy, examples: p.examples });
      nodeFigures(phase.perNode, node).evaluate = { examples: p.examples, loss: p.loss, accuracy: p.accuracy };
      evalRecords.push({ node, status: 'received', examples: p.examples, loss: p.loss, accuracy: p.accuracy });
    };
    const chained = await this.chainNext(round, next, state, evaluators);
    try {
      let asked = evaluators;
      const missing: string[] = [];
      if (chained) {
        // The next round's fit goes out now with these weights, and each site evaluates them before it trains.
        // Its start row is written with this round's end (below): one statement per round.
        const wanted = new Set(evaluators);
        const onlyTrained: string[] = [];
        const fitted = this.fitHandler(chained);
        const answers = await this.collect<FitResultPayload>(
          round + 1,
          'fit',
          chained.chosen,
          (node, a) => {
            const evaluation = a.payload.evaluation;
            if (wanted.has(node)) {
              // Another round's or another site's is not this evaluation: the site is asked on its own.
              if (evaluation?.round === round && evaluation.sender === node && evaluation.task_id === spec.task_id) evaluated(node, evaluation);
              else onlyTrained.push(node);
            }
            return fitted(node, a);
          },
          () => this.broadcast(Msg.RoundFit, round + 1, chained.chosen, next, { strategy: chained.strategy, evaluation: { round, evaluators } }),
          true,
          this.staleFor(chained),
        );
        chained.missing = answers.missing;
        missing.push(...answers.missing.filter((n) => wanted.has(n)));
        // A site of a release before chained evaluation only trains: it is asked for the evaluation on its own.
        asked = onlyTrained;
      }
      if (asked.length) {
        const ev = await this.collect<EvaluateResultPayload>(
          round,
          'evaluate',
          asked,
          (node, { payload: p }) => {
            if (p.status === 'ok' && this.keptBy && p.kept_weights_sha256 === this.keptBy.sha256) this.keptBy.nodes.add(node);
            evaluated(node, p);
          },
          async () => this.broadcast(Msg.RoundEvaluate, round, asked, next, { nextFitSent: chained !== undefined }),
        );
        missing.push(...ev.missing);
      }
      for (const node of missing) evalRecords.push({ node, status: 'missing', reason: `no answer within ${s.round_timeout_s} s` });
      this.countAnswers('evaluate', evalRecords);
      this.checkStopped();
      const minEvaluations = Math.max(1, spec.settings.strategy_params?.min_evaluate_clients ?? 1);
      if (evals.length < minEvaluations) {
        await this.failRound(round, book);
        if (evals.length === 0) throw new RoundShortfall(`round ${round}: no edge worker returned an evaluation of the new weights (asked: ${evaluators.join(', ') || 'none online'})`);
        throw new RoundShortfall(`round ${round}: ${evals.length} evaluation(s) of the new weights, min_evaluate_clients is ${minEvaluations} (asked: ${evaluators.join(', ')})`);
      }

      // The clock of the round's start, so that its duration is the time that passed.
      const finished = preciseNow().date;
      const figures: RoundFigures = {
        participants,
        examples,
        train_loss: weightedMean(phase.trainLosses),
        eval_loss: weightedMean(evals.map((e) => ({ value: e.loss, examples: e.examples }))),
        eval_accuracy: weightedMean(evals.map((e) => ({ value: e.accuracy, examples: e.examples }))),
        eval_examples: evals.reduce((a, e) => a + e.examples, 0),
        started_at: phase.started.toISOString(),
        finished_at: finished.toISOString(),
        duration_ms: finished.getTime() - phase.started.getTime(),
        ...(this.privacy?.totals().epsilon !== undefined ? { epsilon: this.privacy.totals().epsilon } : {}),
        ...server,
      };
      const rejected = fitRecords.filter((r) => r.status === 'rejected').map((r) => ({ node: r.node, reason: r.reason ?? 'rejected' }));
      if (rejected.length) figures.rejected = rejected;
      // The checkpoint also keeps the privacy accounting; the strategy is only ever given its own state.
      const kept = new Map(state);
      this.privacy?.save(kept);
      await book.started;
      await deps.rounds.complete(spec.task_id, round, figures, next.buf, sha256Of(next), {
        strategyState: strategyStateSegments(strategy.name, kept),
        records: book.records,
        keep: deps.config.CHECKPOINTS_KEPT,
        next: chained ? { round: round + 1, selected: chained.chosen, startedAt: chained.startedAt } : undefined,
      });
      book.stored = true;
      if (chained) chained.startRow = Promise.resolve();
      this.serverState = state;
      this.chained = chained;
      deps.metrics.rounds.inc({ outcome: 'completed' });
      deps.metrics.roundDuration.observe(figures.duration_ms / 1000);
      return { global: next, figures, nodes: [...phase.perNode.values()] };
    } catch (err) {
      if (chained) {
        // The next round's updates came from these weights: they go with this round (its retry sends its own fit).
        if (chained.fold.updates > 0) this.log.warn(`round ${round + 1}: ${chained.fold.updates} update(s) from the weights of round ${round} dropped, as round ${round} did not complete`);
        chained.fold.dispose();
        // How the sites answered that fit is recorded, as for a round that stops (runRound); not once another coordinator holds the task.
        const leaseLost = this.signal.aborted && this.signal.reason === 'lease-lost';
        if (!leaseLost) {
          // This round's end did not store the next round's start: it is written here, so that the attempt is on record.
          await (chained.startRow ?? this.startRow(round + 1, chained.chosen, chained.startedAt))
            .then(() => deps.rounds.participants(spec.task_id, round + 1, { fit: chained.records, evaluate: [] }))
            .catch(() => undefined);
        }
      }
      throw err;
    }
  }

  /** The new weights on the operator's held-out rows, where there are some. */
  private async evaluateOnServer(round: number, weights: NamedTensors): Promise<Pick<RoundFigures, 'server_eval_loss' | 'server_eval_accuracy' | 'server_eval_examples'>> {
    if (this.serverEval === undefined) {
      let data: LabeledData | null = null;
      try {
        data = (await this.deps.serverEvaluation?.dataFor(this.spec.use_case)) ?? null;
      } catch (err) {
        throw new TaskFailure((err as Error).message);
      }
      this.serverEval = data ? { data, runner: await createModelRunner(this.pkg, { intraOpNumThreads: 1 }) } : null;
    }
    if (!this.serverEval) return {};
    try {
      const r = await this.serverEval.runner.evaluate(weights, this.serverEval.data);
      return { server_eval_loss: r.loss, server_eval_accuracy: r.accuracy, server_eval_examples: r.examples };
    } catch (err) {
      throw new TaskFailure(`round ${round}: the server-side evaluation failed: ${(err as Error).message}`);
    }
  }

  private countAnswers(phase: 'fit' | 'evaluate', records: ParticipantRecord[]): void {
    for (const r of records) this.deps.metrics.updates.inc({ phase, result: r.status });
  }

  private async failRound(round: number, book: RoundBook): Promise<void> {
    this.deps.metrics.rounds.inc({ outcome: 'failed' });
    await book.started;
    await this.deps.rounds.fail(this.spec.task_id, round, book.records);
    book.stored = true;
  }

  /**
   * Validates one fit answer and folds it in; returns why it was not used, or
   * null. `verifiedSha256`: the attachment's hash as the bus checked it (a
   * chunked transfer), so that a large update is not hashed twice.
   */
  private foldUpdate(
    aggregator: RoundFold,
    node: string,
    p: FitResultPayload,
    attachment: Buffer | undefined,
    verifiedSha256: string | undefined,
    registeredExamples: number | undefined,
  ): string | null | Promise<string | null> {
    if (p.status !== 'ok') return `worker reported an error: ${p.error ?? 'unknown'}`;
    if (!attachment) return 'no weights attached';
    if (p.weights_sha256 && (verifiedSha256 ?? sha256Hex(attachment)) !== p.weights_sha256) return 'weights do not match their sha256';
    try {
      const adding = aggregator.add(node, p, attachment, registeredExamples);
      return adding ? adding.then(() => null, (err) => (err as Error).message) : null;
    } catch (err) {
      return (err as Error).message;
    }
  }

  private async collect<P>(
    round: number,
    phase: CollectPhase,
    nodes: string[],
    handle: (node: string, a: Answer<P>) => void | Promise<void>,
    send: () => Promise<void>,
    needsPackage = true,
    isStale?: (a: Answer<P>) => boolean,
  ) {
    const collector = new RoundCollector<Answer<P>>(nodes, this.spec.settings.round_timeout_s * 1000, this.signal, handle, isStale);
    const unregister = this.deps.router.register(this.spec.task_id, round, phase, collector);
    try {
      if (needsPackage) await this.ensurePackage(nodes);
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
  private async register(weights: NamedTensors, stoppedEarly?: string): Promise<TaskResult> {
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
      ...this.privacy?.totals(),
    };
    const name = `trained_${spec.model_name}`;
    this.bundle = null; // no worker gets the package any more: one copy of the weights less while they are encoded for the registry
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
      ...standardizationTag(this.pkg),
      ...this.privacy?.tags(),
    };
    const version = await this.withRetries(`register the trained model '${name}'`, metrics.rounds, async () => {
      const [existing] = await deps.registry.searchVersions({ name, tags: { task_id: tags.task_id } });
      if (existing) return existing;
      await deps.registry.createModel(name, { description: `${spec.model_name} trained federatedly`, tags: { use_case: spec.use_case } });
      const files = await modelPackageFilesYielding(trained);
      return deps.registry.createVersion(name, Object.entries(files).map(([path, data]) => ({ path, data })), { tags, runId: deps.parentRunId() });
    });
    return { modelName: name, modelVersion: version.version, metrics, ...(stoppedEarly ? { reason: stoppedEarly } : {}) };
  }
}

/** A model trained with federated statistics says so in its tags; the values are in its manifest. */
function standardizationTag(pkg: ModelPackage): Record<string, string> {
  const computed = pkg.manifest.normalization?.statistics?.computed;
  return computed ? { standardization: `federated: ${computed.examples} examples from ${computed.sites} sites` } : {};
}
