import { ConflictException, Inject, Injectable, Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { Msg, Routes, UseCaseDefinedPayload } from '@fl/contracts';
import { defaultUseCaseCatalog, UseCaseCatalog, UseCaseDefinition } from '@fl/datasets';
import { MessageBus } from '@fl/messaging';
import { BUS, DATA_SOURCE, readStoredUseCases } from '@fl/runtime';
import { GATEWAY_SENDER } from '../tasks/tasks.service';

/** How often a gateway rereads the stored use cases, so that one added at another gateway is known here too. */
const REFRESH_MS = 30_000;
/** How long POST /use-cases waits for the broker to confirm the broadcast to the edge workers. */
const BROKER_WAIT_MS = 5000;

/**
 * Use cases added with POST /use-cases, kept in gateway.use_cases and added to
 * this process's catalog, where task submission looks use cases up. Edge
 * workers have no database: each new one is broadcast to them, and a
 * coordinator sends the stored ones to each site that registers without
 * serving them (a site that was down, or starts later).
 */
@Injectable()
export class UseCaseStore implements OnModuleInit, OnApplicationShutdown {
  private readonly log = new Logger(UseCaseStore.name);
  private timer?: NodeJS.Timeout;

  constructor(
    @Inject(DATA_SOURCE) private readonly db: DataSource,
    @Inject(BUS) private readonly bus: MessageBus,
  ) {}

  get catalog(): UseCaseCatalog {
    return defaultUseCaseCatalog();
  }

  async onModuleInit(): Promise<void> {
    await this.refresh();
    this.timer = setInterval(() => void this.refresh().catch((err) => this.log.warn(`stored use cases not reread: ${err}`)), REFRESH_MS);
    this.timer.unref();
  }

  onApplicationShutdown(): void {
    clearInterval(this.timer);
  }

  async refresh(): Promise<void> {
    this.catalog.addStored(await readStoredUseCases(this.db));
  }

  /** Stores a validated definition; 409 when the name is taken (by a file or a stored one). */
  async add(uc: UseCaseDefinition, createdBy: string): Promise<void> {
    const conflict = () =>
      new ConflictException({ message: `use case '${uc.name}' already exists`, details: [{ field: 'name', reason: 'a use case of that name exists' }] });
    if (this.catalog.origin(uc.name)?.kind === 'file') throw conflict();
    const rows: unknown[] = await this.db.query(
      `INSERT INTO gateway.use_cases (name, definition, created_by) VALUES ($1, $2::jsonb, $3) ON CONFLICT (name) DO NOTHING RETURNING name`,
      [uc.name, JSON.stringify(uc), createdBy],
    );
    if (rows.length === 0) throw conflict();
    this.catalog.addStored([uc]);
    await this.broadcast(uc);
  }

  /**
   * Tells every edge worker now. Stored is stored: if the broker does not confirm in time the
   * request still succeeds (the bus sends it once the broker is back), and sites hear of it from a
   * coordinator whenever they register anyway.
   */
  private async broadcast(uc: UseCaseDefinition): Promise<void> {
    const payload: UseCaseDefinedPayload = { task_id: 0, round: 0, sender: GATEWAY_SENDER, definition: { ...uc } };
    let timer: NodeJS.Timeout | undefined;
    const tooSlow = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no broker confirmation within ${BROKER_WAIT_MS} ms`)), BROKER_WAIT_MS);
    });
    try {
      await Promise.race([this.bus.publish(Routes.allWorkers(Msg.UseCaseDefined), { name: Msg.UseCaseDefined, payload: { ...payload } }), tooSlow]);
      this.log.log(`use case '${uc.name}' stored and sent to the edge workers`);
    } catch (err) {
      this.log.warn(`use case '${uc.name}' stored, not yet sent to the edge workers (${(err as Error).message}); sites get it from a coordinator when they register`);
    } finally {
      clearTimeout(timer);
    }
  }
}
