import { Logger } from '@nestjs/common';
import { MessageBus } from '@fl/messaging';
import { EdgeWorkerConfig } from '../../edge-worker/src/config';
import { SimulatorConfig } from './config';
import { parseHostile, SharedModelRunners, VirtualPackageCache } from './model-runners';
import { dealShards, parseDealing } from './shards';
import { EdgeWorkerBlueprint, VirtualWorker } from './virtual-worker';

/** Virtual workers started (and stopped) at once: enough to overlap the broker round trips of their queue declarations. */
const STARTING_AT_ONCE = 25;

export interface SimulationOptions {
  config: SimulatorConfig;
  /** The edge worker's settings (USE_CASES, HEARTBEAT_INTERVAL_S, SPLIT_SEED, ...) for every virtual worker; NODE_NAME is replaced. */
  worker: EdgeWorkerConfig;
  /** Opens the `index`th broker connection; the simulation closes it when it stops. */
  connect: (index: number) => Promise<MessageBus>;
}

/**
 * K virtual edge workers in one process, each the edge worker's own module
 * with its own name, queues, data shard and package cache, sharing a few
 * broker connections (SIM_WORKERS_PER_CONNECTION each) and one set of model
 * runners.
 */
export class Simulation {
  private readonly log = new Logger(Simulation.name);
  private readonly workers: VirtualWorker[] = [];
  private readonly buses: MessageBus[] = [];
  private stopping?: Promise<void>;

  private constructor(private readonly runners: SharedModelRunners) {}

  get names(): string[] {
    return this.workers.map((w) => w.name);
  }

  static async start(opts: SimulationOptions): Promise<Simulation> {
    const { config } = opts;
    const k = config.SIMULATED_WORKERS;
    const names = Array.from({ length: k }, (_, i) => `${config.SIM_NODE_PREFIX}-${i + 1}`);
    const hostile = parseHostile(config.SIM_HOSTILE);
    const strangers = [...hostile.keys()].filter((n) => !names.includes(n));
    if (strangers.length) throw new Error(`SIM_HOSTILE names ${strangers.join(', ')}, which this simulator does not run (${names[0]} .. ${names[k - 1]})`);
    const { shards, sources } = dealShards({
      workers: k,
      dataPath: config.DATA_PATH,
      useCases: opts.worker.USE_CASES?.split(',').filter(Boolean),
      dealing: parseDealing(config.SIM_PARTITION),
      seed: config.SIM_SEED,
      splitSeed: opts.worker.SPLIT_SEED,
    });
    const sim = new Simulation(new SharedModelRunners({ compute: config.SIM_COMPUTE, ortThreads: opts.worker.ORT_THREADS }));
    const t0 = Date.now();
    try {
      const connections = Math.ceil(k / config.SIM_WORKERS_PER_CONNECTION);
      for (let c = 0; c < connections; c++) sim.buses.push(await opts.connect(c));
      const blueprint = EdgeWorkerBlueprint.fromEdgeWorkerModule(opts.worker, sim.buses[0]);
      for (let from = 0; from < k; from += STARTING_AT_ONCE) {
        const batch = names.slice(from, from + STARTING_AT_ONCE).map((name, j) => {
          const i = from + j;
          const worker = Object.assign(Object.create(EdgeWorkerConfig.prototype) as EdgeWorkerConfig, opts.worker, { NODE_NAME: name });
          const mode = hostile.get(name);
          return VirtualWorker.start(blueprint, {
            config: worker,
            bus: sim.buses[Math.floor(i / config.SIM_WORKERS_PER_CONNECTION)],
            splits: shards[i],
            packages: new VirtualPackageCache(worker, sim.runners, mode && { mode, seed: config.SIM_SEED + i }),
          });
        });
        // Every started worker is kept, so that stop() stops it even if another failed to start.
        const started = await Promise.allSettled(batch);
        for (const s of started) if (s.status === 'fulfilled') sim.workers.push(s.value);
        const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
        if (failed) throw failed.reason;
      }
    } catch (err) {
      await sim.stop();
      throw err;
    }
    const data = [...sources].map(([uc, file]) => `${uc} from ${file}`).join(', ');
    sim.log.log(
      `${k} virtual edge workers (${names[0]} .. ${names[k - 1]}) up in ${((Date.now() - t0) / 1000).toFixed(1)} s on ${sim.buses.length} broker connection(s): ` +
        `${data}, dealt ${config.SIM_PARTITION}, ${config.SIM_COMPUTE === 'zero' ? 'zero compute' : 'training with onnxruntime'}` +
        (hostile.size ? `; hostile: ${[...hostile].map(([n, m]) => `${n} ${m.kind}`).join(', ')}` : ''),
    );
    return sim;
  }

  /** Stops every virtual worker as an edge worker stops (last answers sent, goodbyes said), then closes the connections. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      for (let from = 0; from < this.workers.length; from += STARTING_AT_ONCE) {
        const stopped = await Promise.allSettled(this.workers.slice(from, from + STARTING_AT_ONCE).map((w) => w.stop()));
        for (const s of stopped) if (s.status === 'rejected') this.log.warn(`a virtual worker did not stop cleanly: ${s.reason}`);
      }
      for (const bus of this.buses) await bus.close().catch((err) => this.log.warn(`closing a broker connection: ${err}`));
      await this.runners.release();
    })();
    return this.stopping;
  }
}
