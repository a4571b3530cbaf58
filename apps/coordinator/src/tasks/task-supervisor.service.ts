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
import { TaskEventsPublisher } from './task-events.publisher';
import { TaskLeases } from './task-lease.service';

interface Running {
  abort: AbortController;
  done: Promise<void>;
}

/**
 * Starts the tasks this coordinator wins the lease of, keeps their leases
 * alive, stops them on cancel, and looks regularly for tasks nobody runs
 * (unclaimed, or orphaned by a coordinator that died). Every task it starts
 * ends in exactly one final event: succeeded, failed with a reason, or
 * cancelled; on shutdown it hands its tasks back instead.
 */
@Injectable()
export class TaskSupervisor implements OnApplicationShutdown {
  private readonly log = new Logger(TaskSupervisor.name);
  private readonly running = new Map<number, Running>();
  /** Tasks this coordinator stopped because the database went away: the sweep claims them again once it is back. */
  private readonly interrupted = new Set<number>();
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
  ) {}

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
    await this.leases.enqueue(spec);
    await this.tryStart(spec.task_id);
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
    for (const taskId of new Set([...this.interrupted, ...(await this.leases.claimable())])) {
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
    const entry: Running = { abort, done: Promise.resolve() };
    this.running.set(taskId, entry);
    let run: Awaited<ReturnType<TaskLeases['claim']>>;
    try {
      run = await this.leases.claim(taskId);
    } catch (err) {
      this.running.delete(taskId);
      throw err;
    }
    if (!run || run.cancel_requested) {
      this.running.delete(taskId);
      if (run) {
        await this.leases.finish(taskId, 'cancelled');
        await this.events.cancelled(taskId, run.current_round, 'cancelled by request');
      }
      return;
    }
    entry.done = this.execute(run.spec, abort).finally(() => this.running.delete(taskId));
  }

  private async execute(spec: TaskSpec, abort: AbortController): Promise<void> {
    const taskId = spec.task_id;
    const log = new TaskLogger(this.log, { task_id: taskId, correlation_id: spec.correlation_id });
    let lastRound = 0;
    const tracking = new TaskTracking(this.registry, this.trackingRuns, spec);
    const renew = setInterval(() => {
      this.leases
        .renew(taskId)
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
          cancelRequested: () => this.leases.isCancelRequested(taskId),
          parentRunId: () => tracking.parentRunId,
          metrics: this.metrics,
          onRound: async (round, figures, nodes) => {
            lastRound = round;
            await this.events.roundCompleted(taskId, round, spec.num_global_iterations, figures);
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
      await tracking.close('FINISHED');
      // Event first: if the broker fails here the lease lapses and the task
      // is resumed, re-finding its registered model, instead of ending silent.
      await this.events.succeeded(taskId, lastRound, result);
      await this.leases.finish(taskId, 'success');
      log.log(`task ${taskId} succeeded: registered ${result.modelName} version ${result.modelVersion}`);
    } catch (err) {
      await this.conclude(taskId, lastRound, err, abort.signal, tracking, log);
    } finally {
      clearInterval(renew);
    }
  }

  private async conclude(taskId: number, round: number, err: unknown, signal: AbortSignal, tracking: TaskTracking, log: TaskLogger): Promise<void> {
    const why = err instanceof TaskStopped ? err.why : signal.aborted ? (signal.reason as TaskStopped['why']) : null;
    try {
      if (why === 'cancelled') {
        await tracking.close('KILLED');
        await this.events.cancelled(taskId, round, 'cancelled by request');
        await this.leases.finish(taskId, 'cancelled');
        log.log(`task ${taskId} cancelled`);
      } else if (why === 'shutdown') {
        log.log(`task ${taskId}: coordinator shutting down; the task will resume from its last checkpoint`);
        await tracking.settle();
        await this.leases.release(taskId);
      } else if (why === 'lease-lost') {
        log.warn(`task ${taskId}: lease lost to another coordinator; stopped here`);
      } else if (isDatabaseUnavailable(err)) {
        // Not the task's fault: it resumes from its last checkpoint once the database is back.
        log.warn(`task ${taskId}: the database is unavailable (${(err as Error)?.message ?? err}); the task will resume from its last checkpoint`);
        this.interrupted.add(taskId);
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
      // The lease is left to lapse, so that the sweep (here or elsewhere) tries again.
      log.error(`task ${taskId}: could not record its end (${inner}); it will be retried`);
    }
  }
}
