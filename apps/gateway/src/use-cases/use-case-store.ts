import { ConflictException, Inject, Injectable, Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { defaultUseCaseCatalog, UseCaseCatalog, UseCaseDefinition } from '@fl/datasets';
import { DATA_SOURCE, readStoredUseCases } from '@fl/runtime';

/** How often a gateway rereads the stored use cases, so that one added at another gateway is known here too. */
const REFRESH_MS = 30_000;

/**
 * Use cases added with POST /use-cases, kept in gateway.use_cases and added to
 * this process's catalog, where task submission looks use cases up.
 */
@Injectable()
export class UseCaseStore implements OnModuleInit, OnApplicationShutdown {
  private readonly log = new Logger(UseCaseStore.name);
  private timer?: NodeJS.Timeout;

  constructor(@Inject(DATA_SOURCE) private readonly db: DataSource) {}

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
  }
}
