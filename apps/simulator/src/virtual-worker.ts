import { DynamicModule, INestMicroservice, Provider } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Bindings } from '@fl/contracts';
import { SiteSplits } from '@fl/datasets';
import { BusTransport, MessageBus } from '@fl/messaging';
import { BUS } from '@fl/runtime';
import { EdgeWorkerConfig, SITE_SPLITS, WORKER_CONFIG, workerQueue } from '../../edge-worker/src/config';
import { EdgeWorkerModule } from '../../edge-worker/src/edge-worker.module';
import { PresenceService } from '../../edge-worker/src/site/presence.service';
import { PackageCache } from '../../edge-worker/src/training/package-cache';
import { TrainingCancellations } from '../../edge-worker/src/training/training-cancellations';

/** What the simulator gives each virtual worker in place of the edge worker's own. */
const PER_WORKER = [WORKER_CONFIG, BUS, SITE_SPLITS, PackageCache] as const;

export interface VirtualWorkerSpec {
  /** The edge worker's configuration, with this worker's NODE_NAME. */
  config: EdgeWorkerConfig;
  /** Shared with the other virtual workers of its connection. */
  bus: MessageBus;
  splits: SiteSplits;
  packages: PackageCache;
}

/**
 * The edge worker's module (its controllers and providers, as
 * `EdgeWorkerModule.forRoot` wires them) without its process-wide parts
 * (logging, health and metrics, which the simulator has once), ready to be
 * instantiated once per virtual worker with that worker's name, bus, data and
 * package cache. Built from the module itself, so a handler or service added
 * to the edge worker is part of every virtual worker too.
 */
export class EdgeWorkerBlueprint {
  private constructor(private readonly template: DynamicModule) {}

  static fromEdgeWorkerModule(config: EdgeWorkerConfig, bus: MessageBus): EdgeWorkerBlueprint {
    const template = EdgeWorkerModule.forRoot(config, bus, false, new SiteSplits());
    const tokens = (template.providers ?? []).map(tokenOf);
    const missing = PER_WORKER.filter((t) => !tokens.includes(t));
    if (missing.length) {
      throw new Error(`the edge worker module no longer provides ${missing.map((t) => (typeof t === 'function' ? t.name : String(t))).join(', ')}: update the simulator's blueprint`);
    }
    return new EdgeWorkerBlueprint(template);
  }

  moduleFor(spec: VirtualWorkerSpec): DynamicModule {
    const own: Provider[] = [
      { provide: WORKER_CONFIG, useValue: spec.config },
      { provide: BUS, useValue: spec.bus },
      { provide: SITE_SPLITS, useValue: spec.splits },
      { provide: PackageCache, useValue: spec.packages },
    ];
    return {
      module: this.template.module,
      controllers: this.template.controllers,
      providers: [...(this.template.providers ?? []).filter((p) => !(PER_WORKER as readonly unknown[]).includes(tokenOf(p))), ...own],
    };
  }
}

function tokenOf(p: Provider): unknown {
  return typeof p === 'function' ? p : p.provide;
}

/**
 * One virtual edge worker: the edge worker's module as a Nest microservice on
 * its own queue, fl.worker.<name> (same bindings, one message at a time), with
 * its own control queue, presence and heartbeats, started in the order an
 * edge worker starts (queues first, then the announcement).
 */
export class VirtualWorker {
  private constructor(
    readonly name: string,
    private readonly app: INestMicroservice,
  ) {}

  static async start(blueprint: EdgeWorkerBlueprint, spec: VirtualWorkerSpec): Promise<VirtualWorker> {
    const name = spec.config.NODE_NAME;
    const app = await NestFactory.createMicroservice(blueprint.moduleFor(spec), {
      strategy: new BusTransport(spec.bus, { name: workerQueue(name), bindings: Bindings.worker(name, [...spec.splits.keys()]), prefetch: 1 }),
      abortOnError: false,
    });
    try {
      await app.listen();
      await app.get(TrainingCancellations).start();
      await app.get(PresenceService).start();
    } catch (err) {
      await app.close().catch(() => undefined);
      throw err;
    }
    return new VirtualWorker(name, app);
  }

  /** As an edge worker stops: stops consuming (the answer in hand is sent), then says goodbye. */
  stop(): Promise<void> {
    return this.app.close();
  }
}
