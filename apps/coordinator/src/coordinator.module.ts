import { ServerEvaluation } from './rounds/server-evaluation';
import { DynamicModule, Module } from '@nestjs/common';
import { Infra, InfraModule, loggingImports, ObservabilityModule, PlatformMetrics } from '@fl/runtime';
import { CoordinatorConfig } from './config';
import { EdgeWorkerRegistry } from './nodes/node-registry.service';
import { WorkerMetrics } from './nodes/worker-metrics';
import { PresenceController } from './nodes/presence.controller';
import { SiteIdentity } from './nodes/site-identity';
import { UseCaseDefinitionsSender } from './nodes/use-case-definitions';
import { ResultRouter } from './rounds/result-router';
import { ResultsController } from './rounds/results.controller';
import { RoundsRepository } from './rounds/rounds.repository';
import { DeletedTasksRepository } from './tasks/deleted-tasks.repository';
import { TaskEventsPublisher } from './tasks/task-events.publisher';
import { TaskIntakeController } from './tasks/task-intake.controller';
import { TaskLeases } from './tasks/task-lease.service';
import { TaskPurge } from './tasks/task-purge.service';
import { TaskSupervisor } from './tasks/task-supervisor.service';
import { COORDINATOR_CONFIG } from './tokens';
import { TrackingRunsRepository } from './tracking/tracking-runs.repository';

@Module({})
export class CoordinatorModule {
  static forRoot(config: CoordinatorConfig, infra: Infra): DynamicModule {
    return {
      module: CoordinatorModule,
      imports: [
        InfraModule.forRoot(infra),
        ...loggingImports('coordinator', { format: config.LOG_FORMAT, level: config.LOG_LEVEL }),
        ObservabilityModule.forRoot({ metrics: new PlatformMetrics('coordinator'), bus: infra.bus, dataSource: infra.dataSource, registry: infra.registry }),
      ],
      controllers: [TaskIntakeController, PresenceController, ResultsController],
      providers: [
        { provide: COORDINATOR_CONFIG, useValue: config },
        EdgeWorkerRegistry,
        SiteIdentity,
        UseCaseDefinitionsSender,
        WorkerMetrics,
        TaskLeases,
        RoundsRepository,
        ResultRouter,
        ServerEvaluation,
        TaskEventsPublisher,
        TaskSupervisor,
        DeletedTasksRepository,
        TaskPurge,
        TrackingRunsRepository,
      ],
    };
  }
}
