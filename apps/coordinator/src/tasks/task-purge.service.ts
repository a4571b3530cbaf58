import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { CoalescedPass } from '@fl/runtime';
import { CoordinatorConfig } from '../config';
import { COORDINATOR_CONFIG } from '../tokens';
import { DeletedTasksRepository, PurgedRows } from './deleted-tasks.repository';

/** Deleted tasks looked at per query of a sweep. */
const PAGE = 100;

/**
 * Purges the coordinators' records of tasks deleted at the gateway: lease
 * row, rounds, participants, checkpoints and their pieces. A deletion is
 * recorded before its message is acknowledged; the purge runs then and every
 * SWEEP_INTERVAL_S, on whichever coordinator gets there first, and waits for
 * a task that still runs (it was just cancelled) until its runner stops.
 */
@Injectable()
export class TaskPurge implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly log = new Logger(TaskPurge.name);
  private readonly sweeps = new CoalescedPass(() => this.sweepOnce());
  /** Tasks whose purge waits for their runner, logged once each. */
  private readonly waiting = new Set<number>();
  private timer?: NodeJS.Timeout;
  private stopping = false;

  constructor(
    private readonly deletions: DeletedTasksRepository,
    @Inject(COORDINATOR_CONFIG) private readonly config: CoordinatorConfig,
  ) {}

  onApplicationBootstrap(): void {
    const next = () => {
      this.sweep()
        .catch((err) => this.log.warn(`purge of deleted tasks failed: ${(err as Error)?.message ?? err}; tried again in ${this.config.SWEEP_INTERVAL_S} s`))
        .finally(() => {
          if (!this.stopping) this.timer = setTimeout(next, this.config.SWEEP_INTERVAL_S * 1000);
        });
    };
    next();
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.timer);
    await this.sweeps.idle();
  }

  /** tasks.deleted: recorded (then the message may be acknowledged), and purged where nothing runs them. */
  async deleted(taskIds: number[]): Promise<void> {
    await this.deletions.record(taskIds);
    this.log.log(`${taskIds.length} task(s) deleted at the gateway, ids ${Math.min(...taskIds)} to ${Math.max(...taskIds)}: purged here once no coordinator runs them`);
    this.sweep().catch((err) => this.log.warn(`purge of deleted tasks failed: ${(err as Error)?.message ?? err}; the next sweep tries again`));
  }

  /** Purges every deleted task that may be purged now; one sweep at a time. */
  sweep(): Promise<void> {
    return this.stopping ? Promise.resolve() : this.sweeps.run();
  }

  /** The deleted tasks whose purge waits for their runner to stop. */
  get awaitingRunners(): number[] {
    return [...this.waiting];
  }

  private async sweepOnce(): Promise<void> {
    const listed = new Set<number>();
    for (let after = 0; ; ) {
      const ids = await this.deletions.unpurged(after, PAGE);
      for (const id of ids) {
        if (this.stopping) return;
        listed.add(id);
        await this.purgeOne(id);
      }
      if (ids.length < PAGE) break;
      after = ids[ids.length - 1];
    }
    // Purged meanwhile by another coordinator: no longer waited for here.
    for (const id of this.waiting) if (!listed.has(id)) this.waiting.delete(id);
  }

  private async purgeOne(taskId: number): Promise<void> {
    let result: Awaited<ReturnType<DeletedTasksRepository['purge']>>;
    try {
      result = await this.deletions.purge(taskId);
    } catch (err) {
      // A deadlock with a runner that lost its lease, say: the task stays unpurged for the next sweep.
      this.log.warn(`task ${taskId}: purge failed (${(err as Error)?.message ?? err}); the next sweep tries again`);
      return;
    }
    if (result.outcome === 'running') {
      if (!this.waiting.has(taskId)) this.log.log(`task ${taskId} was deleted but still runs: purged once its runner has stopped`);
      this.waiting.add(taskId);
      return;
    }
    this.waiting.delete(taskId);
    // Nothing deleted: another coordinator was first, or no coordinator ever stored the task.
    if (result.outcome === 'purged' && Object.values(result.rows).some((n) => n > 0)) this.log.log(`task ${taskId} purged: ${describe(result.rows)}`);
  }
}

function describe(rows: PurgedRows): string {
  return Object.entries(rows)
    .map(([table, n]) => `${n} ${table}`)
    .join(', ');
}
