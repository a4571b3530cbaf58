import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { GATEWAY_CONFIG, GatewayConfig } from '../config';
import { TasksService } from './tasks.service';

/**
 * Every TASK_RESUBMIT_S, hands tasks that are still pending to the coordinators
 * again, and tells them of deleted tasks the broker has not confirmed yet (a
 * gateway stopped while the broker was away).
 */
@Injectable()
export class PendingTaskResubmitter implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly log = new Logger(PendingTaskResubmitter.name);
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly tasks: TasksService,
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
  ) {}

  onApplicationBootstrap(): void {
    const periodMs = this.config.TASK_RESUBMIT_S * 1000;
    const tellDeletions = () => this.tasks.tellCoordinatorsOfDeletions().catch((err) => this.log.warn(`could not tell the coordinators of deleted tasks: ${err}`));
    // Deletions a stopped gateway left untold go out at once, not a period later.
    void tellDeletions();
    this.timer = setInterval(() => {
      this.tasks.resubmitStale(this.config.TASK_RESUBMIT_S).catch((err) => this.log.warn(`could not resubmit pending tasks: ${err}`));
      void tellDeletions();
    }, periodMs);
  }

  onApplicationShutdown(): void {
    clearInterval(this.timer);
  }
}
