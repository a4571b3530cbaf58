import { Inject, Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import { Bindings, Envelope, Msg, parsePayload } from '@fl/contracts';
import { InboundMessage, MessageBus, Subscription } from '@fl/messaging';
import { BUS } from '@fl/runtime';
import { EdgeWorkerConfig, WORKER_CONFIG } from '../config';

/** A task's local training in progress: how to stop it, and how far it got. */
export interface TrainingRun {
  signal: AbortSignal;
  onStep(steps: number): void;
  /** Batches run when the cancel arrived (undefined: no cancel). */
  readonly stepsAtCancel: number | undefined;
  end(): void;
}

const REMEMBERED_CANCELS = 1000;

/**
 * Cancels reach a worker while it trains: they come on a queue of their own, fl.worker.<node>.control,
 * consumed beside the work queue (which holds one instruction at a time, the one being trained), and
 * abort the task's training, which stops after the batch it is on. A cancelled task's later
 * instructions are not trained at all.
 */
@Injectable()
export class TrainingCancellations implements OnApplicationShutdown {
  private readonly log = new Logger(TrainingCancellations.name);
  private readonly cancelled = new Set<number>();
  private readonly running = new Map<number, Set<{ controller: AbortController; steps: number; stepsAtCancel?: number }>>();
  private subscription?: Subscription;

  constructor(
    @Inject(BUS) private readonly bus: MessageBus,
    @Inject(WORKER_CONFIG) private readonly config: EdgeWorkerConfig,
  ) {}

  async start(): Promise<void> {
    this.subscription = await this.bus.consume(
      { name: `fl.worker.${this.config.NODE_NAME}.control`, bindings: Bindings.workerControl(), prefetch: 16 },
      (m) => this.onMessage(m),
    );
  }

  isCancelled(taskId: number): boolean {
    return this.cancelled.has(taskId);
  }

  begin(taskId: number): TrainingRun {
    const entry: { controller: AbortController; steps: number; stepsAtCancel?: number } = { controller: new AbortController(), steps: 0 };
    const set = this.running.get(taskId) ?? new Set();
    set.add(entry);
    this.running.set(taskId, set);
    return {
      signal: entry.controller.signal,
      onStep: (steps) => void (entry.steps = steps),
      get stepsAtCancel() {
        return entry.stepsAtCancel;
      },
      end: () => {
        set.delete(entry);
        if (set.size === 0) this.running.delete(taskId);
      },
    };
  }

  private async onMessage(m: InboundMessage): Promise<void> {
    if (m.name !== Msg.TrainingStopRequested) throw new Error(`unexpected message '${m.name}' on the control queue`);
    const { task_id: taskId } = parsePayload(Envelope, m.payload);
    this.cancelled.add(taskId);
    if (this.cancelled.size > REMEMBERED_CANCELS) this.cancelled.delete(this.cancelled.values().next().value as number);
    for (const entry of this.running.get(taskId) ?? []) {
      entry.stepsAtCancel = entry.steps;
      entry.controller.abort();
      this.log.log(`task ${taskId} cancelled: stopping its local training (after batch ${entry.steps})`);
    }
  }

  async onApplicationShutdown(): Promise<void> {
    await this.subscription?.cancel();
  }
}
