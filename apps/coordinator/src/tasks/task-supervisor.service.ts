import { ServerEvaluation } from '../rounds/server-evaluation';
import { Inject, Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import { TaskSpec } from '@fl/contracts';
import { MessageBus } from '@fl/messaging';
import { ModelRegistry } from '@fl/registry';
import { BUS, isDatabaseUnavailable, METRICS, MODEL_REGISTRY, PlatformMetrics, TaskLogger } from '@fl/runtime';
import { CoordinatorConfig } from '../config';
import { EdgeWorkerRegistry } from '../nodes/node-registry.service';
import { ResultRouter } from '../rounds/result-router';
import { RoundsRepository } from '../rounds/rounds.repository';
import { TaskFailure, TaskRunner, TaskStopped } from '../rounds/task-runner';
import { COORDINATOR_CONFIG } from '../tokens';
import { TaskTracking } from '../tracking/task-tracking';
import { TrackingRunsRepository } from '../tracking/tracking-runs.repository';
import { DatabaseOutages } from './database-outages';
import { RoundEvents } from './round-events';
import { TaskEventsPublisher } from './task-events.publisher';
import { TaskLeases, TaskRun } from './task-lease.service';

interface Running {
  abort: AbortController;
  done: Promise<void>;
  /** When this coordinator took the task on (ms): an outage that began later did not interrupt it. */
  since: number;
}

/**
 * Starts the tasks this coordinator wins the lease of, keeps their leases
 * alive, stops them on cancel, and looks regularly for tasks nobody runs
 * (unclaimed, or orphaned by a coordinator that died). Every task it starts
 * ends in exactly one final event: succeeded, failed with a reason, or
 * cancelled; on shutdown it hands its tasks back instead.
 *
 * A database outage interrupts the tasks (they resume from their checkpoint once it is back), unless
 * it outlasts DATABASE_OUTAGE_MAX_S: then the tasks that ran through it fail, once the database is
 * back to record it, with a reason naming the outage and its length.
 */
@Injectable()
export class TaskSupervisor implements OnApplicationShutdown {
  private readonly log = new Logger(TaskSupervisor.name);
  private readonly running = new Map<number, Running>();
  /**
   * Tasks this coordinator stopped because the database went away, with when it took each on: the
   * sweep claims them again once it is back.
   */
  private readonly interrupted = new Map<number, number>();
  /** Tasks to fail instead of resume, with the reason: they ran through an outage longer than the bound. */
  private readonly outageVerdicts = new Map<number, string>();
  private readonly outages: DatabaseOutages;
  private sweepTimer?: NodeJS.Timeout;
  private stopping = false;

  constructor(
    @Inject(COORDINATOR_CONFIG) private readonly config: CoordinatorConfig,
    @Inject(BUS) private readonly bus: MessageBus,
    @Inject(MODEL_REGISTRY) private readonly registry: ModelRegistry,
    private readonly leases: TaskLeases,
    private readonly workers: EdgeWorkerRegistry,
    private readonly rounds: RoundsRepository,
    private readonly router: ResultRouter,
    private readonly events: TaskEventsPublisher,
    private readonly trackingRuns: TrackingRunsRepository,
    @Inject(METRICS) private readonly metrics: PlatformMetrics,
    private readonly serverEvaluation: ServerEvaluation,
  ) {
    this.outages = new DatabaseOutages(config.DATABASE_OUTAGE_MAX_S);
  }

  /**
   * Starts looking for work. Called once the coordinator's queue exists:
   * a task started earlier would send its workers a reply-to address that
   * leads nowhere yet, and their answers would be lost.
   */
  start(): void {
    const sweep = () => {
      this.sweep()
        .catch((err) => this.log.error(`sweep failed: ${err}`))
        .finally(() => {
          if (!this.stopping) this.sweepTimer = setTimeout(sweep, this.config.SWEEP_INTERVAL_S * 1000);
        });
    };
    sweep();
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.sweepTimer);
    for (const r of this.running.values()) r.abort.abort('shutdown');
    await Promise.all([...this.running.values()].map((r) => r.done));
  }

  async submit(spec: TaskSpec): Promise<void> {
    await this.observed(() => this.leases.enqueue(spec));
    await this.tryStart(spec.task_id);
  }

  /** Runs a database call, noting whether the database answered (which may end an outage) or was unavailable. */
  private async observed<T>(call: () => Promise<T>): Promise<T> {
    let result: T;
    try {
      result = await call();
    } catch (err) {
      if (isDatabaseUnavailable(err)) this.outages.failed();
      throw err;
    }
    this.databaseAnswered();
    return result;
  }

  private databaseAnswered(): void {
    const outage = this.outages.succeeded();
    if (!outage) return;
    if (!outage.tooLong) {
      this.log.log(`the database answers again after ${outage.seconds.toFixed(1)} s; interrupted tasks resume`);
      return;
    }
    this.log.warn(`${outage.reason}: the tasks that ran through it fail`);
    for (const [taskId, since] of this.interrupted) {
      const reason = this.outages.verdictFor(since, outage);
      if (reason) this.outageVerdicts.set(taskId, reason);
    }
    // Those still running (the outage never reached their own queries) stop here and fail with the same reason.
    for (const [taskId, run] of this.running) {
      const reason = this.outages.verdictFor(run.since, outage);
      if (!reason) continue;
      this.outageVerdicts.set(taskId, reason);
      run.abort.abort('database-outage');
    }
  }

  async cancel(taskId: number, reason: string): Promise<void> {
    const state = await this.leases.requestCancel(taskId);
    const run = this.running.get(taskId);
    if (run) {
      this.log.log(`task ${taskId}: cancel requested, stopping`);
      run.abort.abort('cancelled');
      // Workers training for it stop after their current batch instead of finishing the round.
      await this.events.stopTraining(taskId).catch((err) => this.log.warn(`task ${taskId}: workers not told to stop training: ${err}`));
      return;
    }
    if (state && (await this.leases.cancelIfQueued(taskId))) {
      await this.events.cancelled(taskId, 0, reason);
    }
  }

  private async sweep(): Promise<void> {
    if (this.stopping) return;
    // Its own interrupted tasks first: their lease is still this coordinator's, so they are not claimable yet.
    const claimable = await this.observed(() => this.leases.claimable());
    for (const taskId of new Set([...this.interrupted.keys(), ...claimable])) {
      await this.tryStart(taskId);
      this.interrupted.delete(taskId);
    }
  }

  private async tryStart(taskId: number): Promise<void> {
    if (this.stopping || this.running.has(taskId)) return;
    // Reserved before the first await: a submission and a sweep racing for
    // the same task in this process must not both start it (the lease lets
    // its holder claim again).
    const abort = new AbortController();
    const entry: Running = { abort, done: Promise.resolve(), since: this.interrupted.get(taskId) ?? Date.now() };
    this.running.set(taskId, entry);
    let run: Awaited<ReturnType<TaskLeases['claim']>>;
    try {
      run = await this.observed(() => this.leases.claim(taskId));
    } catch (err) {
      this.running.delete(taskId);
      throw err;
    }
    const verdict = run && !run.cancel_requested ? this.outageVerdictFor(run) : undefined;
    if (run && verdict) {
      try {
        await this.failAfterOutage(run, verdict);
      } finally {
        this.running.delete(taskId);
      }
      return;
    }
    if (!run) this.outageVerdicts.delete(taskId);
    if (!run || run.cancel_requested) {
      this.running.delete(taskId);
      if (run) {
        await this.leases.finish(taskId, 'cancelled');
        await this.events.cancelled(taskId, run.current_round, 'cancelled by request');
      }
      return;
    }
    entry.done = this.execute(run.spec, abort, entry.since).finally(() => this.running.delete(taskId));
  }

  /**
   * Whether a task just claimed ran through an outage longer than the bound: one of this
   * coordinator's (stopped by it, or still running when it ended), or another's whose lease lapsed
   * during it (that coordinator could not renew it; it fails the task too, if it is still there).
   */
  private outageVerdictFor(run: TaskRun): string | undefined {
    const known = this.outageVerdicts.get(run.task_id);
    if (known || this.interrupted.has(run.task_id) || run.lapsed_s === null) return known;
    const reason = this.outages.verdictForLapsedLease(run.lapsed_s, this.config.SWEEP_INTERVAL_S);
    if (reason) this.outageVerdicts.set(run.task_id, reason);
    return reason;
  }

  /** Records the end of a task claimed back after a too long outage, instead of resuming it. */
  private async failAfterOutage(run: TaskRun, reason: string): Promise<void> {
    const taskId = run.task_id;
    const log = new TaskLogger(this.log, { task_id: taskId, correlation_id: run.spec.correlation_id });
    try {
      const tracking = new TaskTracking(this.registry, this.trackingRuns, run.spec);
      await tracking.open();
      await tracking.close('FAILED');
      await this.events.failed(taskId, run.current_round, reason);
      await this.leases.finish(taskId, 'failed');
    } catch (err) {
      // Still to be recorded: the sweep claims it again (the verdict stays) rather than waiting for its lease to lapse.
      this.interrupted.set(taskId, this.interrupted.get(taskId) ?? 0);
      throw err;
    }
    this.outageVerdicts.delete(taskId);
    log.warn(`task ${taskId} failed: ${reason}`);
  }

  private async execute(spec: TaskSpec, abort: AbortController, since: number): Promise<void> {
    const taskId = spec.task_id;
    const log = new TaskLogger(this.log, { task_id: taskId, correlation_id: spec.correlation_id });
    let lastRound = 0;
    /** Completed rounds' events to the gateway, behind the rounds; every completed round's again when a task resumes. */
    const roundEvents = new RoundEvents(
      (rounds) => this.events.roundsCompleted(taskId, spec.num_global_iterations, rounds),
      this.config.ROUND_EVENTS_WINDOW_MS,
      (err, n) => log.warn(`task ${taskId}: the event of ${n} round(s) was not sent (${(err as Error)?.message ?? err}); sending it again`),
    );
    const tracking = new TaskTracking(this.registry, this.trackingRuns, spec);
    const renew = setInterval(() => {
      this.observed(() => this.leases.renew(taskId))
        .then((held) => {
          if (!held) abort.abort('lease-lost');
        })
        .catch((err) => log.warn(`task ${taskId}: lease renewal failed: ${err}`));
    }, (this.config.LEASE_TTL_S * 1000) / 3);
    try {
      await this.events.started(taskId);
      log.log(`task ${taskId} started: ${spec.num_global_iterations} rounds of ${spec.settings.strategy} on '${spec.use_case}'`);
      await tracking.open();
      const runner = new TaskRunner(
        {
          config: this.config,
          bus: this.bus,
          registry: this.registry,
          workers: this.workers,
          rounds: this.rounds,
          router: this.router,
          serverEvaluation: this.serverEvaluation,
          cancelRequested: () => this.leases.isCancelRequested(taskId),
          parentRunId: () => tracking.parentRunId,
          metrics: this.metrics,
          onResumed: (rounds) => {
            lastRound = rounds[rounds.length - 1]?.round ?? lastRound;
            roundEvents.add(...rounds);
          },
          onRound: (round, figures, nodes) => {
            lastRound = round;
            roundEvents.add({ round, figures });
            tracking.round(round, figures, nodes);
            log.log(
              `round ${round}/${spec.num_global_iterations}: ${figures.participants} workers, ${figures.examples} examples, ` +
                `train loss ${figures.train_loss.toFixed(4)}, eval loss ${figures.eval_loss.toFixed(4)}, eval accuracy ${figures.eval_accuracy.toFixed(4)}`,
            );
          },
        },
        spec,
        abort.signal,
      );
      const result = await runner.run();
      // Every round's event before the task's end.
      await roundEvents.flush();
      await tracking.close('FINISHED');
      // Event first: if the broker fails here the lease lapses and the task
      // is resumed, re-finding its registered model, instead of ending silent.
      await this.events.succeeded(taskId, lastRound, result);
      await this.leases.finish(taskId, 'success');
      log.log(`task ${taskId} succeeded: registered ${result.modelName} version ${result.modelVersion}`);
    } catch (err) {
      // The rounds that did complete are shown, whatever the end.
      await roundEvents.flush().catch((e) => log.warn(`task ${taskId}: ${roundEvents.unsent} round event(s) not sent: ${(e as Error)?.message ?? e}`));
      await this.conclude(taskId, lastRound, err, abort.signal, tracking, log, since);
    } finally {
      roundEvents.dispose();
      clearInterval(renew);
    }
  }

  private async conclude(
    taskId: number,
    round: number,
    err: unknown,
    signal: AbortSignal,
    tracking: TaskTracking,
    log: TaskLogger,
    since: number,
  ): Promise<void> {
    const why = err instanceof TaskStopped ? err.why : signal.aborted ? (signal.reason as TaskStopped['why']) : null;
    const outageReason = this.outageVerdicts.get(taskId);
    try {
      if (why === 'cancelled') {
        await tracking.close('KILLED');
        await this.events.cancelled(taskId, round, 'cancelled by request');
        await this.leases.finish(taskId, 'cancelled');
        this.outageVerdicts.delete(taskId);
        log.log(`task ${taskId} cancelled`);
      } else if (outageReason && !isDatabaseUnavailable(err)) {
        // The database is back (the verdict is given then): record the failure now, unless another
        // coordinator took the task over meanwhile (its lease lapsed during the outage): that one ends it.
        if (!(await this.leases.renew(taskId))) {
          this.outageVerdicts.delete(taskId);
          log.warn(`task ${taskId}: ${outageReason}; another coordinator holds its lease now and ends it`);
          return;
        }
        await tracking.close('FAILED');
        await this.events.failed(taskId, round, outageReason);
        await this.leases.finish(taskId, 'failed');
        this.outageVerdicts.delete(taskId);
        log.warn(`task ${taskId} failed: ${outageReason}`);
      } else if (why === 'shutdown') {
        log.log(`task ${taskId}: coordinator shutting down; the task will resume from its last checkpoint`);
        await tracking.settle();
        await this.leases.release(taskId);
      } else if (why === 'lease-lost') {
        log.warn(`task ${taskId}: lease lost to another coordinator; stopped here`);
      } else if (isDatabaseUnavailable(err)) {
        // Not the task's fault: it resumes from its last checkpoint once the database is back.
        this.outages.failed();
        log.warn(
          `task ${taskId}: the database is unavailable (${(err as Error)?.message ?? err}); the task will resume from its last checkpoint ` +
            `once it is back, or fail if it stays away longer than DATABASE_OUTAGE_MAX_S=${this.config.DATABASE_OUTAGE_MAX_S}`,
        );
        this.interrupted.set(taskId, since);
        await tracking.settle();
      } else {
        const reason = err instanceof TaskFailure ? err.message : `internal error in the coordinator: ${(err as Error)?.message ?? err}`;
        if (!(err instanceof TaskFailure)) log.error(`task ${taskId}: ${(err as Error)?.stack ?? err}`);
        await tracking.close('FAILED');
        await this.events.failed(taskId, round, reason);
        await this.leases.finish(taskId, 'failed');
        log.warn(`task ${taskId} failed: ${reason}`);
      }
    } catch (inner) {
      // The lease is left to lapse, so that the sweep (here or elsewhere) tries again; a failure
      // decided by an outage is retried here at the next sweep, the verdict kept.
      if (this.outageVerdicts.has(taskId)) this.interrupted.set(taskId, since);
      log.error(`task ${taskId}: could not record its end (${inner}); it will be retried`);
    }
  }
}
