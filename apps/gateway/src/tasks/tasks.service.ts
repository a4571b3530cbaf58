import { BadRequestException, Inject, Injectable, Logger, NotFoundException, UnprocessableEntityException } from '@nestjs/common';
import { DEFAULT_FL_SETTINGS, Msg, PrivacySettings, Routes, TASKS_DELETED_MAX_IDS, TaskCancelRequestedPayload, TasksDeletedPayload, TaskSubmittedPayload } from '@fl/contracts';
import { StrategyParameterError } from '@fl/aggregation';
import { findUseCase } from '@fl/datasets';
import { MessageBus } from '@fl/messaging';
import { ModelRegistry } from '@fl/registry';
import { BUS, CoalescedPass, MODEL_REGISTRY } from '@fl/runtime';
import { CreateTaskDto } from './dto/create-task.dto';
import { DeleteTasksResultDto, RoundDto, TaskDto } from './dto/task.dto';
import { settingsOf, TasksRepository } from './tasks.repository';
import { isFinal } from './task-status';
import { resolveTaskStrategy, TaskStrategy } from './task-strategy';
import { resolveTaskPrivacy, TaskPrivacyError } from './task-privacy';

export const GATEWAY_SENDER = 'gateway';
/** How long an HTTP request waits for the broker to confirm a message. */
const BROKER_WAIT_MS = 5000;

@Injectable()
export class TasksService {
  private readonly log = new Logger(TasksService.name);
  private readonly deletionNotices = new CoalescedPass(() => this.tellDeletions());

  constructor(
    private readonly tasks: TasksRepository,
    @Inject(BUS) private readonly bus: MessageBus,
    @Inject(MODEL_REGISTRY) private readonly registry: ModelRegistry,
  ) {}

  /**
   * Checks everything that can be checked here before storing anything, then
   * stores the task `pending` and hands it to the coordinators.
   */
  async create(body: CreateTaskDto, correlationId: string): Promise<TaskDto> {
    const strategy = this.strategyOf(body);
    const privacy = this.privacyOf(body, strategy);
    if (!findUseCase(body.use_case)) {
      throw new UnprocessableEntityException({ message: `unknown use case '${body.use_case}'`, details: [{ field: 'use_case', reason: 'no such use case' }] });
    }
    const version = await this.registry.getVersion(body.model_name, body.model_version);
    if (!version) {
      throw new NotFoundException({
        message: `model '${body.model_name}' version ${body.model_version} is not in the registry`,
        details: [{ field: 'model_version', reason: 'no such registered model version' }],
      });
    }
    const modelUseCase = version.tags['use_case'];
    if (modelUseCase && modelUseCase !== body.use_case) {
      throw new UnprocessableEntityException({
        message: `model '${body.model_name}' version ${body.model_version} is for use case '${modelUseCase}', not '${body.use_case}'`,
        details: [{ field: 'use_case', reason: `the model serves '${modelUseCase}'` }],
      });
    }
    const d = DEFAULT_FL_SETTINGS;
    const task = await this.tasks.insert({
      user_id: body.user_id,
      use_case: body.use_case,
      model_name: body.model_name,
      model_version: body.model_version,
      num_global_iterations: body.num_global_iterations,
      run_name: body.run_name,
      experiment_name: body.experiment_name,
      ...strategy,
      local_epochs: body.local_epochs ?? d.local_epochs,
      batch_size: body.batch_size ?? d.batch_size,
      // the strategy's: for the FedOpt family also its eta_l
      learning_rate: strategy.learning_rate,
      round_timeout_s: body.round_timeout_s ?? d.round_timeout_s,
      seed: body.seed ?? d.seed,
      max_update_norm: body.max_update_norm ?? null,
      privacy: privacy ?? null,
    }, correlationId);
    // If the broker cannot take it now, the task stays pending and the resubmitter hands it over again.
    await this.withoutWaitingOnBroker(this.publishSubmitted(task), `task ${task.id}: not yet handed to the coordinators`);
    this.log.log({ msg: `task ${task.id} submitted: ${task.use_case}, ${task.model_name} v${task.model_version}, ${task.num_global_iterations} rounds`, task_id: task.id, correlation_id: correlationId });
    return task;
  }

  /** The body's strategy checked against the registry: a bad name or parameter is a 400 naming it. */
  private strategyOf(body: CreateTaskDto): TaskStrategy {
    try {
      return resolveTaskStrategy(body);
    } catch (err) {
      if (!(err instanceof StrategyParameterError)) throw err;
      const field = err.parameter === null ? 'strategy' : err.parameter === 'min_fit_clients' || err.parameter === 'fraction_fit' ? err.parameter : `strategy_params.${err.parameter}`;
      throw new BadRequestException({ message: err.message, details: [{ field, reason: err.message }] });
    }
  }

  /** The body's differential privacy checked and completed: a bad setting is a 400 naming it. */
  private privacyOf(body: CreateTaskDto, strategy: TaskStrategy): PrivacySettings | undefined {
    try {
      return resolveTaskPrivacy(body.privacy, strategy);
    } catch (err) {
      if (!(err instanceof TaskPrivacyError)) throw err;
      const field = err.parameter === null ? 'privacy' : `privacy.${err.parameter}`;
      throw new BadRequestException({ message: err.message, details: [{ field, reason: err.message }] });
    }
  }

  /**
   * While the broker is unreachable a publish waits for the reconnect (and is
   * sent then); an HTTP caller does not wait that long.
   */
  private async withoutWaitingOnBroker(publish: Promise<void>, what: string): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const tooSlow = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no broker confirmation within ${BROKER_WAIT_MS} ms`)), BROKER_WAIT_MS);
    });
    try {
      await Promise.race([publish, tooSlow]);
    } catch (err) {
      this.log.warn(`${what} (${(err as Error).message})`);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Hands a task to the coordinators; they ignore a task they already know. */
  async publishSubmitted(task: TaskDto): Promise<void> {
    const payload: TaskSubmittedPayload = {
      task_id: task.id,
      round: 0,
      sender: GATEWAY_SENDER,
      spec: {
        task_id: task.id,
        user_id: task.user_id,
        use_case: task.use_case,
        model_name: task.model_name,
        model_version: task.model_version,
        num_global_iterations: task.num_global_iterations,
        run_name: task.run_name,
        experiment_name: task.experiment_name,
        settings: settingsOf(task),
        correlation_id: task.correlation_id ?? undefined,
      },
      correlation_id: task.correlation_id ?? undefined,
    };
    await this.bus.publish(Routes.allCoordinators(Msg.TaskSubmitted), { name: Msg.TaskSubmitted, payload: { ...payload } });
  }

  /**
   * Tasks still pending after `afterS` seconds are handed to the coordinators
   * again: a submission published while no coordinator queue existed went
   * nowhere, and a task must not wait forever for a message that was lost.
   */
  async resubmitStale(afterS: number): Promise<number> {
    const stale = await this.tasks.touchStalePending(afterS);
    for (const task of stale) await this.publishSubmitted(task);
    if (stale.length) this.log.log(`handed ${stale.length} pending task(s) to the coordinators again: ${stale.map((t) => t.id).join(', ')}`);
    return stale.length;
  }

  async get(id: number): Promise<TaskDto> {
    const task = await this.tasks.find(id);
    if (!task) throw new NotFoundException(`task ${id} not found`);
    return task;
  }

  list(userId?: string): Promise<TaskDto[]> {
    return this.tasks.list(userId);
  }

  async rounds(id: number): Promise<RoundDto[]> {
    await this.get(id);
    return this.tasks.rounds(id);
  }

  /**
   * A pending task is cancelled here at once; a running one is cancelled by
   * its coordinator, which stops within one round deadline and reports
   * task.cancelled. Either way the coordinators are told. Cancelling a task
   * that has already ended changes nothing and returns it as it is.
   */
  async cancel(id: number, reason = 'cancelled by request'): Promise<TaskDto> {
    const task = await this.get(id);
    if (isFinal(task.status)) return task;
    await this.tasks.markCancelRequested(id);
    const payload: TaskCancelRequestedPayload = { task_id: id, round: 0, sender: GATEWAY_SENDER, reason };
    const publish = this.bus.publish(Routes.allCoordinators(Msg.TaskCancelRequested), { name: Msg.TaskCancelRequested, payload: { ...payload } });
    await this.withoutWaitingOnBroker(publish, `task ${id}: cancel not yet confirmed by the broker; it is sent when the broker is back`);
    if (task.status === 'pending') await this.tasks.transition(id, 'cancelled', { reason });
    return this.get(id);
  }

  /**
   * The predecessor's "delete all": active tasks are cancelled first, so no
   * work is left running unowned; then the rows go, and the coordinators are
   * told to purge theirs (rounds, checkpoints), which they do once the
   * cancelled runs have stopped.
   */
  async deleteAll(): Promise<DeleteTasksResultDto> {
    const all = await this.tasks.list();
    let cancelled = 0;
    for (const t of all.filter((t) => !isFinal(t.status))) {
      await this.cancel(t.id, 'cancelled because all tasks were deleted');
      cancelled++;
    }
    const deleted = await this.tasks.remove(all.map((t) => t.id));
    // Kept in the outbox until the broker confirms: if it cannot now, it is sent when it is back, or by the next gateway.
    await this.withoutWaitingOnBroker(this.tellCoordinatorsOfDeletions(), `deleted tasks: the coordinators are not told yet; they are once the broker confirms`);
    return { message: 'All tasks deleted', deleted: deleted.length, cancelled };
  }

  /** Tells the coordinators of every deletion in the outbox; one pass at a time (a caller meanwhile gets one more). */
  tellCoordinatorsOfDeletions(): Promise<void> {
    return this.deletionNotices.run();
  }

  private async tellDeletions(): Promise<void> {
    for (;;) {
      const ids = await this.tasks.untoldDeletions(TASKS_DELETED_MAX_IDS);
      if (ids.length === 0) return;
      const payload: TasksDeletedPayload = { task_id: 0, round: 0, sender: GATEWAY_SENDER, task_ids: ids };
      await this.bus.publish(Routes.allCoordinators(Msg.TasksDeleted), { name: Msg.TasksDeleted, payload: { ...payload } });
      await this.tasks.deletionsTold(ids);
      this.log.log(`told the coordinators of ${ids.length} deleted task(s), ids ${ids[0]} to ${ids[ids.length - 1]}`);
    }
  }
}
