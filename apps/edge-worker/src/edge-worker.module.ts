import { DynamicModule, Inject, Module, OnApplicationShutdown } from '@nestjs/common';
import { SiteSplit } from '@fl/datasets';
import { MessageBus } from '@fl/messaging';
import { BUS, loggingImports, ObservabilityModule, PlatformMetrics } from '@fl/runtime';
import { EdgeWorkerConfig, SITE_SPLITS, WORKER_CONFIG } from './config';
import { PresenceController } from './site/presence.controller';
import { PresenceService } from './site/presence.service';
import { SiteData } from './site/site-data.service';
import { UseCaseDefinitions } from './site/use-case-definitions';
import { UseCaseDefinitionsController } from './site/use-case-definitions.controller';
import { KeptWeights } from './training/kept-weights';
import { PackageCache } from './training/package-cache';
import { TrainingCancellations } from './training/training-cancellations';
import { TrainingController } from './training/training.controller';

const OWNS_BUS = Symbol('OWNS_BUS');

@Module({})
export class EdgeWorkerModule implements OnApplicationShutdown {
  constructor(
    @Inject(BUS) private readonly bus: MessageBus,
    @Inject(OWNS_BUS) private readonly ownsBus: boolean,
  ) {}

  static forRoot(config: EdgeWorkerConfig, bus: MessageBus, ownsBus: boolean, splits: Map<string, SiteSplit>): DynamicModule {
    return {
      module: EdgeWorkerModule,
      imports: [
        ...loggingImports('edge-worker', { format: config.LOG_FORMAT, level: config.LOG_LEVEL }),
        ObservabilityModule.forRoot({ metrics: new PlatformMetrics('edge-worker'), bus }),
      ],
      controllers: [TrainingController, PresenceController, UseCaseDefinitionsController],
      providers: [
        { provide: WORKER_CONFIG, useValue: config },
        { provide: BUS, useValue: bus },
        { provide: OWNS_BUS, useValue: ownsBus },
        { provide: SITE_SPLITS, useValue: splits },
        SiteData,
        PackageCache,
        KeptWeights,
        TrainingCancellations,
        PresenceService,
        UseCaseDefinitions,
      ],
    };
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.ownsBus) await this.bus.close();
  }
}
