import { Module } from '@nestjs/common';
import { PendingTaskResubmitter } from './pending-task-resubmitter';
import { TaskMetrics } from './task-metrics';
import { TaskEventsController } from './task-events.controller';
import { TasksController } from './tasks.controller';
import { TasksRepository } from './tasks.repository';
import { TasksService } from './tasks.service';

@Module({
  controllers: [TasksController, TaskEventsController],
  providers: [TasksService, TasksRepository, PendingTaskResubmitter, TaskMetrics],
})
export class TasksModule {}
