import { Controller } from '@nestjs/common';
import { EventPattern, Payload } from '@nestjs/microservices';
import { Msg, parsePayload, TaskCancelRequestedPayload, TaskSubmittedPayload } from '@fl/contracts';
import { TaskSupervisor } from './task-supervisor.service';

@Controller()
export class TaskIntakeController {
  constructor(private readonly supervisor: TaskSupervisor) {}

  @EventPattern(Msg.TaskSubmitted)
  submitted(@Payload() raw: unknown): Promise<void> {
    return this.supervisor.submit(parsePayload(TaskSubmittedPayload, raw).spec);
  }

  @EventPattern(Msg.TaskCancelRequested)
  cancelRequested(@Payload() raw: unknown): Promise<void> {
    const p = parsePayload(TaskCancelRequestedPayload, raw);
    return this.supervisor.cancel(p.task_id, p.reason ?? 'cancelled by request');
  }
}
