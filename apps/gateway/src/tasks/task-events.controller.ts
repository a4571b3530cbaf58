import { Controller, Logger } from '@nestjs/common';
import { EventPattern, Payload } from '@nestjs/microservices';
import {
  Msg,
  parsePayload,
  RoundCompletedPayload,
  RoundsCompletedPayload,
  TaskCancelledPayload,
  TaskFailedPayload,
  TaskStartedPayload,
  TaskSucceededPayload,
} from '@fl/contracts';
import { retryWhileDatabaseUnavailable } from '@fl/runtime';
import { TasksRepository } from './tasks.repository';

/** How long an event waits, unacknowledged, for the database to come back before it is dead-lettered. */
const DATABASE_OUTAGE_WAIT_MS = 5 * 60_000;

/**
 * Keeps the task table in step with what the coordinators report. Every
 * event is validated; one that does not fit the task's state (late,
 * duplicate, for a deleted task) is recorded in the log and acknowledged.
 * While the database is unavailable an event waits for it instead of being
 * dead-lettered: a lost task.succeeded would leave its task running forever.
 */
@Controller()
export class TaskEventsController {
  private readonly log = new Logger(TaskEventsController.name);

  constructor(private readonly tasks: TasksRepository) {}

  private stored<T>(op: () => Promise<T>): Promise<T> {
    return retryWhileDatabaseUnavailable(op, {
      maxWaitMs: DATABASE_OUTAGE_WAIT_MS,
      onRetry: (err) => this.log.warn(`database unavailable (${(err as Error)?.message ?? err}); the event waits for it`),
    });
  }

  @EventPattern(Msg.TaskStarted)
  async started(@Payload() raw: unknown): Promise<void> {
    const p = parsePayload(TaskStartedPayload, raw);
    const moved = await this.stored(() => this.tasks.transition(p.task_id, 'running'));
    await this.stored(() => this.tasks.recordEvent(p.task_id, Msg.TaskStarted, { coordinator: p.coordinator }));
    if (!moved) this.log.debug(`task ${p.task_id}: ${Msg.TaskStarted} from ${p.sender} ignored (task gone or not pending)`);
  }

  @EventPattern(Msg.RoundCompleted)
  async roundCompleted(@Payload() raw: unknown): Promise<void> {
    const p = parsePayload(RoundCompletedPayload, raw);
    const fresh = await this.stored(() => this.tasks.recordRound(p.task_id, p.round, p.figures));
    if (!fresh) this.log.debug(`task ${p.task_id} round ${p.round}: duplicate or orphan ${Msg.RoundCompleted} ignored`);
  }

  /** Rounds that completed while the coordinator's last round event was on its way, in one event. */
  @EventPattern(Msg.RoundsCompleted)
  async roundsCompleted(@Payload() raw: unknown): Promise<void> {
    const p = parsePayload(RoundsCompletedPayload, raw);
    const fresh = await this.stored(() => this.tasks.recordRounds(p.task_id, p.rounds));
    if (fresh < p.rounds.length) {
      this.log.debug(`task ${p.task_id} rounds ${p.rounds[0].round}..${p.round}: ${p.rounds.length - fresh} duplicate or orphan round(s) of ${Msg.RoundsCompleted} ignored`);
    }
  }

  @EventPattern(Msg.TaskSucceeded)
  async succeeded(@Payload() raw: unknown): Promise<void> {
    const p = parsePayload(TaskSucceededPayload, raw);
    await this.finish(p.task_id, Msg.TaskSucceeded, p, () =>
      this.tasks.transition(p.task_id, 'success', { metrics: p.metrics, result_model_name: p.model_name, result_model_version: p.model_version, reason: p.reason }),
    );
  }

  @EventPattern(Msg.TaskFailed)
  async failed(@Payload() raw: unknown): Promise<void> {
    const p = parsePayload(TaskFailedPayload, raw);
    await this.finish(p.task_id, Msg.TaskFailed, p, () => this.tasks.transition(p.task_id, 'failed', { reason: p.reason }));
  }

  @EventPattern(Msg.TaskCancelled)
  async cancelled(@Payload() raw: unknown): Promise<void> {
    const p = parsePayload(TaskCancelledPayload, raw);
    await this.finish(p.task_id, Msg.TaskCancelled, p, () => this.tasks.transition(p.task_id, 'cancelled', { reason: p.reason ?? 'cancelled' }));
  }

  private async finish(taskId: number, type: string, payload: object, move: () => Promise<unknown>): Promise<void> {
    // A task can end without its started event having been seen (cancelled
    // while pending at the coordinator, or events reordered across queues).
    const moved = await this.stored(move);
    await this.stored(() => this.tasks.recordEvent(taskId, type, payload));
    if (!moved) this.log.debug(`task ${taskId}: ${type} ignored (task gone or already final)`);
  }
}
