import { Inject, Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import { Msg, MsgName, NodePresencePayload, Routes } from '@fl/contracts';
import { MessageBus } from '@fl/messaging';
import { BUS } from '@fl/runtime';
import { EdgeWorkerConfig, WORKER_CONFIG } from '../config';
import { SiteData } from './site-data.service';

/**
 * Registers the site with the coordinators and keeps telling them it is
 * alive. Started once the worker's queue exists (a coordinator may send work
 * the moment it hears of the site), and again whenever a coordinator asks.
 */
@Injectable()
export class PresenceService implements OnApplicationShutdown {
  private readonly log = new Logger(PresenceService.name);
  private timer?: NodeJS.Timeout;

  constructor(
    @Inject(BUS) private readonly bus: MessageBus,
    @Inject(WORKER_CONFIG) private readonly config: EdgeWorkerConfig,
    private readonly site: SiteData,
  ) {}

  private payload(): NodePresencePayload {
    const examples: NodePresencePayload['examples'] = {};
    for (const [uc, s] of this.site.splits) examples[uc] = { train: s.train.n, test: s.test.n };
    const rejected = this.site.rejected;
    return {
      task_id: 0,
      round: 0,
      sender: this.config.NODE_NAME,
      use_cases: this.site.useCases,
      examples,
      version: '0.1.0',
      ...(rejected.size ? { rejected_use_cases: Object.fromEntries(rejected) } : {}),
    };
  }

  private announce(name: MsgName): Promise<void> {
    return this.bus.publish(Routes.allCoordinators(name), { name, payload: { ...this.payload() } });
  }

  /** Announces the site now (registration, or an answer to a coordinator that asked). */
  announceNow(): Promise<void> {
    return this.announce(Msg.NodeRegistered);
  }

  async start(): Promise<void> {
    await this.announceNow();
    const refused = [...this.site.rejected.keys()];
    this.log.log(
      `${this.config.NODE_NAME} registered for ${this.site.useCases.join(', ') || 'no use case'}` + (refused.length ? `; refusing ${refused.join(', ')} (see above)` : ''),
    );
    this.timer = setInterval(() => {
      this.announce(Msg.NodeHeartbeat).catch((err) => this.log.warn(`heartbeat not sent: ${err}`));
    }, this.config.HEARTBEAT_INTERVAL_S * 1000);
  }

  /**
   * Runs after the worker has stopped consuming (its last answer is sent) and
   * before its bus closes: tells the coordinators not to wait for this site.
   */
  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.timer);
    await this.announce(Msg.NodeLeaving).catch((err) => this.log.warn(`could not say goodbye to the coordinators: ${err}`));
  }
}
