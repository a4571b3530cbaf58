import { Inject, Injectable } from '@nestjs/common';
import { CompletedRound, Msg, MsgName, Routes } from '@fl/contracts';
import { MessageBus } from '@fl/messaging';
import { BUS } from '@fl/runtime';
import { CoordinatorConfig } from '../config';
import { COORDINATOR_CONFIG } from '../tokens';
import { TaskResult } from '../rounds/task-runner';

/** The status events the gateway stores. */
@Injectable()
export class TaskEventsPublisher {
  constructor(
    @Inject(BUS) private readonly bus: MessageBus,
    @Inject(COORDINATOR_CONFIG) private readonly config: CoordinatorConfig,
  ) {}

  private emit(name: MsgName, taskId: number, round: number, body: Record<string, unknown>): Promise<void> {
    const me = this.config.COORDINATOR_ID;
    return this.bus.publish(Routes.gateway(name), { name, payload: { task_id: taskId, round, sender: me, ...body } });
  }

  started(taskId: number): Promise<void> {
    return this.emit(Msg.TaskStarted, taskId, 0, { coordinator: this.config.COORDINATOR_ID });
  }

  /** Completed rounds, oldest first: one as round.completed (what every gateway release reads), several as one rounds.completed. */
  roundsCompleted(taskId: number, numRounds: number, rounds: CompletedRound[]): Promise<void> {
    const last = rounds[rounds.length - 1];
    if (!last) return Promise.resolve();
    if (rounds.length === 1) return this.emit(Msg.RoundCompleted, taskId, last.round, { num_rounds: numRounds, figures: { ...last.figures } });
    return this.emit(Msg.RoundsCompleted, taskId, last.round, { num_rounds: numRounds, rounds: rounds.map((r) => ({ round: r.round, figures: { ...r.figures } })) });
  }

  succeeded(taskId: number, round: number, r: TaskResult): Promise<void> {
    return this.emit(Msg.TaskSucceeded, taskId, round, { model_name: r.modelName, model_version: r.modelVersion, metrics: { ...r.metrics }, ...(r.reason ? { reason: r.reason } : {}) });
  }

  failed(taskId: number, round: number, reason: string): Promise<void> {
    return this.emit(Msg.TaskFailed, taskId, round, { reason });
  }

  cancelled(taskId: number, round: number, reason: string): Promise<void> {
    return this.emit(Msg.TaskCancelled, taskId, round, { reason });
  }

  /** To every worker's control queue: stop the task's local training after the current batch. */
  stopTraining(taskId: number): Promise<void> {
    const name = Msg.TrainingStopRequested;
    return this.bus.publish(Routes.workerControl(name), { name, payload: { task_id: taskId, round: 0, sender: this.config.COORDINATOR_ID } });
  }
}
