import { Inject, Injectable, Logger } from '@nestjs/common';
import { Bindings } from '@fl/contracts';
import { defaultUseCaseCatalog, parseUseCase, readSiteTables, splitForUseCase, UseCaseDefinition, UseCaseValidationError } from '@fl/datasets';
import { MessageBus } from '@fl/messaging';
import { BUS } from '@fl/runtime';
import { EdgeWorkerConfig, WORKER_CONFIG, workerQueue } from '../config';
import { PresenceService } from './presence.service';
import { SiteData } from './site-data.service';

/**
 * What the site made of a definition: `served` (its files fit: it trains on
 * them from now on), `refused` (its files have the columns but do not fit, or
 * it cannot receive the use case's rounds; the reason is reported), `no-data`
 * (no file has its columns), `not-requested` (USE_CASES leaves it out),
 * `invalid` (not a valid definition), `conflict` (the site defines the name
 * otherwise, in a file or by an earlier definition it serves), `known` (this
 * very definition was handled before: nothing to do).
 */
export type DefinitionOutcome = 'served' | 'refused' | 'no-data' | 'not-requested' | 'invalid' | 'conflict' | 'known';

/** Definitions remembered as handled; more would be a gateway gone wild, and the oldest are forgotten. */
const REMEMBERED = 1000;

/**
 * Use cases stored at the gateway (POST /use-cases) reach the site as
 * definitions over the bus: broadcast when added, and sent again by a
 * coordinator each time the site registers without serving them. The site
 * checks each against the use case schema and its CSV files exactly as at
 * start-up; one that fits is served at once (its queue is bound to the use
 * case's rounds and the site announces itself again), one that does not is
 * refused with the reason, as at start-up. An invalid definition, or one
 * defining a name the site already defines otherwise, changes nothing but a
 * log line. The same definition again changes nothing at all.
 */
@Injectable()
export class UseCaseDefinitions {
  private readonly log = new Logger(UseCaseDefinitions.name);
  /** Canonical JSON of each definition handled -> what came of it. */
  private readonly handled = new Map<string, DefinitionOutcome>();
  /** Use case -> canonical JSON of the definition the site serves it by, for those learned here. */
  private readonly learned = new Map<string, string>();
  /** Definitions refused for a reason that may pass (the broker refused the binding): tried again when they come again. */
  private readonly retry = new Set<string>();

  constructor(
    @Inject(BUS) private readonly bus: MessageBus,
    @Inject(WORKER_CONFIG) private readonly config: EdgeWorkerConfig,
    private readonly site: SiteData,
    private readonly presence: PresenceService,
  ) {}

  /** The use cases USE_CASES names; undefined when it names none (every use case that fits is served). */
  private get requested(): string[] | undefined {
    const names = this.config.USE_CASES?.split(',').filter(Boolean);
    return names?.length ? names : undefined;
  }

  async receive(definition: unknown, from: string): Promise<DefinitionOutcome> {
    const key = canonicalJson(definition);
    const before = this.handled.get(key);
    if (before) return 'known';
    const outcome = await this.decide(definition, key, from);
    if (this.retry.delete(key)) return outcome;
    this.handled.set(key, outcome);
    if (this.handled.size > REMEMBERED) this.handled.delete(this.handled.keys().next().value as string);
    return outcome;
  }

  private async decide(definition: unknown, key: string, from: string): Promise<DefinitionOutcome> {
    let uc: UseCaseDefinition;
    try {
      uc = parseUseCase(definition, `definition from ${from}`);
    } catch (err) {
      if (!(err instanceof UseCaseValidationError)) throw err;
      const name = typeof (definition as { name?: unknown })?.name === 'string' ? ` of use case '${(definition as { name: string }).name.slice(0, 64)}'` : '';
      this.log.error(`refusing the definition${name} from ${from}, nothing changed: ${err.message}`);
      return 'invalid';
    }
    const canonical = canonicalJson(uc);
    const catalog = defaultUseCaseCatalog();
    const origin = catalog.origin(uc.name);
    if (origin?.kind === 'file') {
      if (canonicalJson(catalog.find(uc.name)) === canonical) return 'known';
      this.log.error(`refusing the definition of use case '${uc.name}' from ${from}, nothing changed: this site defines it otherwise in ${origin.path}`);
      return 'conflict';
    }
    const served = this.learned.get(uc.name);
    if (served !== undefined && this.site.split(uc.name)) {
      if (served === canonical) return 'known';
      this.log.error(`refusing a second definition of use case '${uc.name}' from ${from}, nothing changed: this site serves it by the first one it received`);
      return 'conflict';
    }
    const requested = this.requested;
    if (requested && !requested.includes(uc.name)) {
      this.log.log(`use case '${uc.name}' (defined at the gateway, from ${from}) is not among USE_CASES (${requested.join(', ')}): not served`);
      return 'not-requested';
    }
    let outcome: ReturnType<typeof splitForUseCase>;
    try {
      outcome = splitForUseCase(readSiteTables(this.config.DATA_PATH), uc, this.config.SPLIT_SEED, requested !== undefined);
    } catch (err) {
      return this.refuse(uc.name, `cannot read the site's data: ${(err as Error).message}`);
    }
    if (!outcome) {
      this.log.log(`use case '${uc.name}' (defined at the gateway, from ${from}): no file of ${this.config.DATA_PATH} has its columns; not served`);
      return 'no-data';
    }
    if ('rejected' in outcome) return this.refuse(uc.name, outcome.rejected);
    try {
      // Bound before the coordinators hear of it, so that no round broadcast of the use case passes the site by.
      await this.bus.addBinding(workerQueue(this.config.NODE_NAME), Bindings.useCaseWorkers(uc.name));
    } catch (err) {
      this.retry.add(key);
      return this.refuse(uc.name, `cannot receive the use case's rounds: ${(err as Error).message}`);
    }
    this.site.serve(uc.name, outcome.split);
    this.learned.set(uc.name, canonical);
    const { train, test } = outcome.split;
    this.log.log(`serving use case '${uc.name}' (defined at the gateway, from ${from}): ${train.n} training and ${test.n} held-out rows from ${this.config.DATA_PATH}`);
    await this.announce();
    return 'served';
  }

  private async refuse(useCase: string, reason: string): Promise<DefinitionOutcome> {
    this.site.refuse(useCase, reason);
    this.log.error(`refusing use case '${useCase}': ${reason}`);
    await this.announce();
    return 'refused';
  }

  /** Tells the coordinators now; should that fail, the next heartbeat carries the same news. */
  private async announce(): Promise<void> {
    await this.presence.announceNow().catch((err) => this.log.warn(`could not announce the change to the coordinators now (the next heartbeat will): ${err}`));
  }
}

/** JSON with every object's keys sorted: one text per definition, whichever way it was serialised (jsonb reorders keys). */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : v,
  );
}
