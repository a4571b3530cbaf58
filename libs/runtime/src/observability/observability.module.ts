import { DynamicModule, Global, Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { HealthController } from './health.controller';
import { METRICS, OBSERVED, Observed } from './observed';

/** Health and metrics endpoints for any of the apps; METRICS is injectable everywhere in it. */
@Global()
@Module({})
export class ObservabilityModule {
  static forRoot(observed: Observed): DynamicModule {
    observed.metrics.watchBus(observed.bus.stats);
    return {
      module: ObservabilityModule,
      imports: [TerminusModule.forRoot({ logger: false })],
      controllers: [HealthController],
      providers: [
        { provide: OBSERVED, useValue: observed },
        { provide: METRICS, useValue: observed.metrics },
      ],
      exports: [METRICS],
    };
  }
}
