import { DynamicModule, Global, Module } from '@nestjs/common';
import { APP_FILTER, APP_GUARD, APP_PIPE } from '@nestjs/core';
import { ThrottlerModule } from '@nestjs/throttler';
import { Infra, InfraModule, loggingImports, ObservabilityModule, PlatformMetrics } from '@fl/runtime';
import { AppController } from './app.controller';
import { AuditModule } from './audit/audit.module';
import { AuthModule } from './auth/auth.module';
import { GATEWAY_CONFIG, GatewayConfig } from './config';
import { HttpErrorFilter } from './common/http-exception.filter';
import { ClientRateLimit } from './common/rate-limit.guard';
import { createValidationPipe } from './common/validation';
import { ModelsController } from './models/models.controller';
import { NodesController } from './nodes/nodes.controller';
import { StrategiesController } from './strategies/strategies.controller';
import { TasksModule } from './tasks/tasks.module';
import { UseCasesModule } from './use-cases/use-cases.module';

/** The gateway's configuration, visible to every feature module. */
@Global()
@Module({})
class GatewayConfigModule {
  static forRoot(config: GatewayConfig): DynamicModule {
    return { module: GatewayConfigModule, providers: [{ provide: GATEWAY_CONFIG, useValue: config }], exports: [GATEWAY_CONFIG] };
  }
}

@Module({})
export class GatewayModule {
  static forRoot(config: GatewayConfig, infra: Infra): DynamicModule {
    return {
      module: GatewayModule,
      imports: [
        GatewayConfigModule.forRoot(config),
        ...loggingImports('gateway', { format: config.LOG_FORMAT, level: config.LOG_LEVEL }),
        InfraModule.forRoot(infra),
        ObservabilityModule.forRoot({ metrics: new PlatformMetrics('gateway'), bus: infra.bus, dataSource: infra.dataSource, registry: infra.registry }),
        ThrottlerModule.forRoot([{ ttl: 60_000, limit: config.RATE_LIMIT_PER_MINUTE }]),
        AuthModule,
        AuditModule,
        TasksModule,
        UseCasesModule,
      ],
      controllers: [AppController, ModelsController, NodesController, StrategiesController],
      providers: [
        { provide: APP_PIPE, useFactory: createValidationPipe },
        { provide: APP_GUARD, useClass: ClientRateLimit },
        { provide: APP_FILTER, useClass: HttpErrorFilter },
      ],
    };
  }
}
