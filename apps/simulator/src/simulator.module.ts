import { DynamicModule, Injectable, Module, OnApplicationShutdown } from '@nestjs/common';
import { loggingImports, LogSetup } from '@fl/runtime';
import { Simulation } from './simulation';

/** Holds the running simulation so that the app's shutdown (SIGTERM, SIGINT) stops it. */
@Injectable()
export class SimulationHost implements OnApplicationShutdown {
  simulation?: Simulation;

  async onApplicationShutdown(): Promise<void> {
    await this.simulation?.stop();
  }
}

/** The simulator's process-wide parts: logging and shutdown. The virtual workers are Nest microservices of their own. */
@Module({})
export class SimulatorModule {
  static forRoot(log: LogSetup): DynamicModule {
    return { module: SimulatorModule, imports: loggingImports('simulator', log), providers: [SimulationHost] };
  }
}
