import { Body, Controller, Delete, ForbiddenException, Get, HttpCode, NotFoundException, Param, Post, Put, Req } from '@nestjs/common';
import type { Request } from 'express';
import { ApiBadRequestResponse, ApiBearerAuth, ApiForbiddenResponse, ApiNotFoundResponse, ApiOkResponse, ApiOperation, ApiSecurity, ApiTags, ApiUnauthorizedResponse, ApiUnprocessableEntityResponse } from '@nestjs/swagger';
import { AuditLog } from '../audit/audit.service';
import { Caller, Roles } from '../auth/decorators';
import { isAdmin, Principal, seesAllTasks } from '../auth/principal';
import { requestCorrelationId } from '../common/correlation';
import { positiveIntParam } from '../common/int-param.pipe';
import { CreateTaskDto } from './dto/create-task.dto';
import { DeleteTasksResultDto, ErrorBodyDto, RoundDto, TaskDto } from './dto/task.dto';
import { TasksService } from './tasks.service';

const idPipe = positiveIntParam('id');

@ApiTags('tasks')
@ApiBearerAuth()
@ApiSecurity('api-key')
@ApiUnauthorizedResponse({ type: ErrorBodyDto, description: 'No valid bearer token or API key.' })
@Controller('tasks')
export class TasksController {
  constructor(
    private readonly tasks: TasksService,
    private readonly audit: AuditLog,
  ) {}

  @Post()
  @HttpCode(200)
  @ApiOperation({ summary: 'Create a training task', description: 'Validates the body, checks the model version exists, stores the task `pending` and hands it to a coordinator. Answers 200 with the task, as the predecessor did.' })
  @ApiOkResponse({ type: TaskDto })
  @ApiBadRequestResponse({ type: ErrorBodyDto, description: 'A missing, unknown or ill-typed field.' })
  @ApiNotFoundResponse({ type: ErrorBodyDto, description: 'The model name/version is not registered.' })
  @ApiUnprocessableEntityResponse({ type: ErrorBodyDto, description: 'Unknown use case, or a model for another use case.' })
  @Roles('admin', 'scientist')
  @ApiForbiddenResponse({ type: ErrorBodyDto, description: 'A viewer, or a user_id other than the caller (admins may submit for anyone).' })
  async create(@Body() body: CreateTaskDto, @Req() req: Request, @Caller() caller: Principal): Promise<TaskDto> {
    if (!isAdmin(caller) && body.user_id !== caller.subject) {
      throw new ForbiddenException({ message: `user_id must be your own subject ('${caller.subject}'); only admins submit for others`, details: [{ field: 'user_id', reason: 'not the authenticated subject' }] });
    }
    const correlationId = requestCorrelationId(req);
    const task = await this.tasks.create(body, correlationId);
    await this.audit.record(caller, 'task.created', { type: 'task', id: task.id }, { user_id: task.user_id, model: `${task.model_name}:${task.model_version}`, rounds: task.num_global_iterations }, correlationId);
    return task;
  }

  @Get()
  @ApiOperation({ summary: 'List all tasks' })
  @ApiOkResponse({ type: TaskDto, isArray: true })
  list(@Caller() caller: Principal): Promise<TaskDto[]> {
    return this.tasks.list(seesAllTasks(caller) ? undefined : caller.subject);
  }

  @Delete()
  @Roles('admin')
  @ApiOperation({ summary: 'Delete all tasks', description: 'Pending and running tasks are cancelled first, so no work is left running.' })
  @ApiOkResponse({ type: DeleteTasksResultDto })
  async deleteAll(@Caller() caller: Principal): Promise<DeleteTasksResultDto> {
    const result = await this.tasks.deleteAll();
    await this.audit.record(caller, 'tasks.deleted', { type: 'task' }, { deleted: result.deleted, cancelled_first: result.cancelled });
    return result;
  }

  @Get('user/:user_id')
  @ApiOperation({ summary: "List one user's tasks" })
  @ApiOkResponse({ type: TaskDto, isArray: true })
  listForUser(@Param('user_id') userId: string, @Caller() caller: Principal): Promise<TaskDto[]> {
    if (!seesAllTasks(caller) && userId !== caller.subject) throw new ForbiddenException(`you may list only your own tasks ('${caller.subject}')`);
    return this.tasks.list(userId);
  }

  @Put('cancel/:id')
  @ApiOperation({ summary: 'Cancel a task', description: 'A pending task is cancelled at once; a running one stops within one round deadline and then shows `cancelled`.' })
  @ApiOkResponse({ type: TaskDto })
  @ApiNotFoundResponse({ type: ErrorBodyDto })
  @Roles('admin', 'scientist')
  async cancel(@Param('id', idPipe) id: number, @Caller() caller: Principal): Promise<TaskDto> {
    const before = await this.visible(id, caller);
    const after = await this.tasks.cancel(id);
    if (before.status !== after.status || !before.cancel_requested_at) {
      await this.audit.record(caller, 'task.cancelled', { type: 'task', id }, { status_before: before.status, status_after: after.status });
    }
    return after;
  }

  @Get(':id/rounds')
  @ApiOperation({ summary: "A task's per-round figures" })
  @ApiOkResponse({ type: RoundDto, isArray: true })
  @ApiNotFoundResponse({ type: ErrorBodyDto })
  async rounds(@Param('id', idPipe) id: number, @Caller() caller: Principal): Promise<RoundDto[]> {
    await this.visible(id, caller);
    return this.tasks.rounds(id);
  }

  @Get(':id')
  @ApiOperation({ summary: 'Get a task' })
  @ApiOkResponse({ type: TaskDto })
  @ApiNotFoundResponse({ type: ErrorBodyDto })
  get(@Param('id', idPipe) id: number, @Caller() caller: Principal): Promise<TaskDto> {
    return this.visible(id, caller);
  }

  /** A scientist sees only their own tasks; another's is as good as absent (404). */
  private async visible(id: number, caller: Principal): Promise<TaskDto> {
    const task = await this.tasks.get(id);
    if (!seesAllTasks(caller) && task.user_id !== caller.subject) throw new NotFoundException(`task ${id} not found`);
    return task;
  }
}
