export * from './entities';
export {
  ALL_ENTITIES,
  ALL_MIGRATIONS,
  MIGRATIONS_TABLE,
  MIGRATION_LOCK_KEY,
  createDataSource,
  runMigrations,
  ensureDatabase,
  dropDatabase,
  redactUrl,
} from './data-source';
export type { CreateDataSourceOptions } from './data-source';
export {
  startEmbeddedPostgres,
  EmbeddedPostgresLockedError,
  EMBEDDED_LOCK_FILE,
} from './embedded-postgres';
export type { EmbeddedPostgres, EmbeddedPostgresOptions } from './embedded-postgres';
export { InitialSchema1767225600000 } from './migrations/1767225600000-initial-schema';
export { createMigratedTestDatabase, createTestDatabase, testServerUrl } from './testing';
export type { MigratedTestDatabase } from './testing';
export { recordAudit } from './audit';
export type { AuditRecord, Queryable } from './audit';
