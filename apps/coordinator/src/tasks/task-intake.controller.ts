import { Controller, Logger } from '@nestjs/common';
import { EventPattern, Payload } from '@nestjs/microservices';
import { Msg, parsePayload, TaskCancelRequestedPayload, TasksDeletedPayload, TaskSubmittedPayload } from '@fl/contracts';
import { retryWhileDatabaseUnavailable } from '@fl/runtime';
import { TaskPurge } from './task-purge.service';
import { TaskSupervisor } from './task-supervisor.service';

/** How long a submission, cancel or deletion waits, unacknowledged, for the database to come back before it is dead-lettered. */
const DATABASE_OUTAGE_WAIT_MS = 5 * 60_000;

@Controller()
export class TaskIntakeController {
  private readonly log = new Logger(TaskIntakeController.name);

  constructor(
    private readonly supervisor: TaskSupervisor,
    private readonly purge: TaskPurge,
  ) {}

  /** A cancel or deletion dead-lettered during a database outage would be lost: it waits for the database instead. */
  private stored(op: () => Promise<void>): Promise<void> {
    return retryWhileDatabaseUnavailable(op, {
      maxWaitMs: DATABASE_OUTAGE_WAIT_MS,
      onRetry: (err) => this.log.warn(`database unavailable (${(err as Error)?.message ?? err}); the message waits for it`),
    });
  }

  @EventPattern(Msg.TaskSubmitted)
  submitted(@Payload() raw: unknown): Promise<void> {
    const { spec } = parsePayload(TaskSubmittedPayload, raw);
    return this.stored(() => this.supervisor.submit(spec));
  }

  @EventPattern(Msg.TaskCancelRequested)
  cancelRequested(@Payload() raw: unknown): Promise<void> {
    const p = parsePayload(TaskCancelRequestedPayload, raw);
    return this.stored(() => this.supervisor.cancel(p.task_id, p.reason ?? 'cancelled by request'));
  }

  /** Acknowledged once recorded: the purge itself may have to wait for a runner to stop. */
  @EventPattern(Msg.TasksDeleted)
  tasksDeleted(@Payload() raw: unknown): Promise<void> {
    const p = parsePayload(TasksDeletedPayload, raw);
    return this.stored(() => this.purge.deleted(p.task_ids));
  }
}
