import { DynamicModule, Module } from '@nestjs/common';
import { APP_FILTER, APP_PIPE } from '@nestjs/core';
import { Infra, InfraModule } from '@fl/runtime';
import { AppController } from './app.controller';
import { GATEWAY_CONFIG, GatewayConfig } from './config';
import { HttpErrorFilter } from './common/http-exception.filter';
import { createValidationPipe } from './common/validation';
import { ModelsController } from './models/models.controller';
import { NodesController } from './nodes/nodes.controller';
import { TasksModule } from './tasks/tasks.module';

@Module({})
export class GatewayModule {
  static forRoot(config: GatewayConfig, infra: Infra): DynamicModule {
    return {
      module: GatewayModule,
      imports: [InfraModule.forRoot(infra), TasksModule],
      controllers: [AppController, ModelsController, NodesController],
      providers: [
        { provide: GATEWAY_CONFIG, useValue: config },
        { provide: APP_PIPE, useFactory: createValidationPipe },
        { provide: APP_FILTER, useClass: HttpErrorFilter },
      ],
    };
  }
}
