import { Body, Controller, Delete, Get, HttpCode, Param, Post, Put, Req } from '@nestjs/common';
import type { Request } from 'express';
import { ApiBadRequestResponse, ApiNotFoundResponse, ApiOkResponse, ApiOperation, ApiTags, ApiUnprocessableEntityResponse } from '@nestjs/swagger';
import { requestCorrelationId } from '../common/correlation';
import { positiveIntParam } from '../common/int-param.pipe';
import { CreateTaskDto } from './dto/create-task.dto';
import { DeleteTasksResultDto, ErrorBodyDto, RoundDto, TaskDto } from './dto/task.dto';
import { TasksService } from './tasks.service';

const idPipe = positiveIntParam('id');

@ApiTags('tasks')
@Controller('tasks')
export class TasksController {
  constructor(private readonly tasks: TasksService) {}

  @Post()
  @HttpCode(200)
  @ApiOperation({ summary: 'Create a training task', description: 'Validates the body, checks the model version exists, stores the task `pending` and hands it to a coordinator. Answers 200 with the task, as the predecessor did.' })
  @ApiOkResponse({ type: TaskDto })
  @ApiBadRequestResponse({ type: ErrorBodyDto, description: 'A missing, unknown or ill-typed field.' })
  @ApiNotFoundResponse({ type: ErrorBodyDto, description: 'The model name/version is not registered.' })
  @ApiUnprocessableEntityResponse({ type: ErrorBodyDto, description: 'Unknown use case, or a model for another use case.' })
  create(@Body() body: CreateTaskDto, @Req() req: Request): Promise<TaskDto> {
    return this.tasks.create(body, requestCorrelationId(req));
  }

  @Get()
  @ApiOperation({ summary: 'List all tasks' })
  @ApiOkResponse({ type: TaskDto, isArray: true })
  list(): Promise<TaskDto[]> {
    return this.tasks.list();
  }

  @Delete()
  @ApiOperation({ summary: 'Delete all tasks', description: 'Pending and running tasks are cancelled first, so no work is left running.' })
  @ApiOkResponse({ type: DeleteTasksResultDto })
  deleteAll(): Promise<DeleteTasksResultDto> {
    return this.tasks.deleteAll();
  }

  @Get('user/:user_id')
  @ApiOperation({ summary: "List one user's tasks" })
  @ApiOkResponse({ type: TaskDto, isArray: true })
  listForUser(@Param('user_id') userId: string): Promise<TaskDto[]> {
    return this.tasks.list(userId);
  }

  @Put('cancel/:id')
  @ApiOperation({ summary: 'Cancel a task', description: 'A pending task is cancelled at once; a running one stops within one round deadline and then shows `cancelled`.' })
  @ApiOkResponse({ type: TaskDto })
  @ApiNotFoundResponse({ type: ErrorBodyDto })
  cancel(@Param('id', idPipe) id: number): Promise<TaskDto> {
    return this.tasks.cancel(id);
  }

  @Get(':id/rounds')
  @ApiOperation({ summary: "A task's per-round figures" })
  @ApiOkResponse({ type: RoundDto, isArray: true })
  @ApiNotFoundResponse({ type: ErrorBodyDto })
  rounds(@Param('id', idPipe) id: number): Promise<RoundDto[]> {
    return this.tasks.rounds(id);
  }

  @Get(':id')
  @ApiOperation({ summary: 'Get a task' })
  @ApiOkResponse({ type: TaskDto })
  @ApiNotFoundResponse({ type: ErrorBodyDto })
  get(@Param('id', idPipe) id: number): Promise<TaskDto> {
    return this.tasks.get(id);
  }
}
