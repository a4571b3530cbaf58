import { Module } from '@nestjs/common';
import { TaskEventsController } from './task-events.controller';
import { TasksController } from './tasks.controller';
import { TasksRepository } from './tasks.repository';
import { TasksService } from './tasks.service';

@Module({
  controllers: [TasksController, TaskEventsController],
  providers: [TasksService, TasksRepository],
})
export class TasksModule {}
