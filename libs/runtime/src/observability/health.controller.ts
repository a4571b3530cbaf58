import { Controller, Get, Header, Inject } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import { HealthCheck, HealthCheckService, HealthIndicatorService } from '@nestjs/terminus';
import { OBSERVED, Observed } from './observed';
import { Public } from './public-route';

const CHECK_TIMEOUT_MS = 3000;

function within<T>(ms: number, work: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms)));
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}

/**
 * /health/live: the process answers (no dependency checked, so a broker
 * outage does not get pods restarted). /health/ready: the database, the
 * broker and the registry this app uses all answer. /metrics: Prometheus.
 */
@ApiExcludeController()
@Public()
@Controller()
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly indicator: HealthIndicatorService,
    @Inject(OBSERVED) private readonly observed: Observed,
  ) {}

  @Get('health/live')
  @HealthCheck()
  live() {
    return this.health.check([]);
  }

  @Get('health/ready')
  @HealthCheck()
  ready() {
    const { bus, dataSource, registry } = this.observed;
    return this.health.check([
      async () => {
        const s = this.indicator.check('broker');
        return bus.stats.connected ? s.up() : s.down({ message: 'not connected to the broker' });
      },
      ...(dataSource
        ? [
            async () => {
              const s = this.indicator.check('database');
              try {
                await within(CHECK_TIMEOUT_MS, dataSource.query('SELECT 1'), 'database');
                return s.up();
              } catch (err) {
                return s.down({ message: (err as Error).message });
              }
            },
          ]
        : []),
      ...(registry
        ? [
            async () => {
              const s = this.indicator.check('registry');
              try {
                // A lookup of a model that does not exist: the cheapest call every backend answers.
                await within(CHECK_TIMEOUT_MS, registry.getVersion('fl-health-check', 1), 'registry');
                return s.up({ backend: registry.backend });
              } catch (err) {
                return s.down({ backend: registry.backend, message: (err as Error).message });
              }
            },
          ]
        : []),
    ]);
  }

  @Get('metrics')
  @Header('content-type', 'text/plain; version=0.0.4; charset=utf-8')
  metrics(): Promise<string> {
    return this.observed.metrics.registry.metrics();
  }
}

