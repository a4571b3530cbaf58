import { Client } from 'pg';
import { DataSource, MigrationExecutor } from 'typeorm';
import { CheckpointEntity, NodeEntity, RoundEntity, RoundParticipantEntity, TaskRunEntity } from './entities/coordinator.entities';
import { TaskEntity, TaskEventEntity } from './entities/gateway.entities';
import {
  ModelVersionEntity,
  RegisteredModelEntity,
  RunEntity,
  RunMetricEntity,
} from './entities/registry.entities';
import { InitialSchema1767225600000 } from './migrations/1767225600000-initial-schema';
import { TaskTracking1767225600001 } from './migrations/1767225600001-task-tracking';
import { TaskCorrelation1767225600002 } from './migrations/1767225600002-task-correlation';
import { ApiKeys1767225600003 } from './migrations/1767225600003-api-keys';
import { AuditLog1767225600004 } from './migrations/1767225600004-audit-log';
import { SiteEnrolment1767225600005 } from './migrations/1767225600005-site-enrolment';
import { UseCases1767225600006 } from './migrations/1767225600006-use-cases';
import { CheckpointStrategyState1767225600007 } from './migrations/1767225600007-checkpoint-strategy-state';
import { TaskStandardization1767225600008 } from './migrations/1767225600008-task-standardization';
import { CheckpointChunks1767225600009 } from './migrations/1767225600009-checkpoint-chunks';
import { RoundFigures1767225600010 } from './migrations/1767225600010-round-figures';
import { TaskDeletions1767225600011 } from './migrations/1767225600011-task-deletions';
import { CheckpointStatePieces1767225600012 } from './migrations/1767225600012-checkpoint-state-pieces';
import { CheckpointStateHash1767225600013 } from './migrations/1767225600013-checkpoint-state-hash';
import { CancelledRounds1767225600014 } from './migrations/1767225600014-cancelled-rounds';
import { RoundFunctions1767225600015 } from './migrations/1767225600015-round-functions';

/** Every entity, registered explicitly (no globs: they break under ts-jest, tsc and bundlers alike). */
export const ALL_ENTITIES = [
  TaskEntity,
  TaskEventEntity,
  TaskRunEntity,
  NodeEntity,
  RoundEntity,
  RoundParticipantEntity,
  CheckpointEntity,
  RegisteredModelEntity,
  ModelVersionEntity,
  RunEntity,
  RunMetricEntity,
];

/** Every migration, in order. */
export const ALL_MIGRATIONS = [InitialSchema1767225600000, TaskTracking1767225600001, TaskCorrelation1767225600002, ApiKeys1767225600003, AuditLog1767225600004, SiteEnrolment1767225600005, UseCases1767225600006, CheckpointStrategyState1767225600007, TaskStandardization1767225600008, CheckpointChunks1767225600009, RoundFigures1767225600010, TaskDeletions1767225600011, CheckpointStatePieces1767225600012, CheckpointStateHash1767225600013, CancelledRounds1767225600014, RoundFunctions1767225600015];

export const MIGRATIONS_TABLE = 'fl_migrations';

/**
 * Advisory-lock key taken while migrating ("flmigr" as a 48-bit int, well inside int8).
 * Any process migrating this database serialises on it.
 */
export const MIGRATION_LOCK_KEY = 0x666c6d696772;

export interface CreateDataSourceOptions {
  /** postgres://user:pass@host:port/db */
  url: string;
  /** Max pool connections. Use 1 against the embedded (PGlite) server. Default 10. */
  poolSize?: number;
  logging?: boolean;
  applicationName?: string;
}

/** A TypeORM DataSource (not yet initialised) for the platform schema. Never synchronizes. */
export function createDataSource(opts: CreateDataSourceOptions): DataSource {
  return new DataSource({
    type: 'postgres',
    url: opts.url,
    poolSize: opts.poolSize ?? 10,
    logging: opts.logging ?? false,
    applicationName: opts.applicationName ?? 'fl-platform',
    synchronize: false,
    migrationsRun: false,
    entities: ALL_ENTITIES,
    migrations: ALL_MIGRATIONS,
    migrationsTableName: MIGRATIONS_TABLE,
    migrationsTransactionMode: 'all',
  });
}

/**
 * Runs pending migrations; idempotent and safe to call from several processes at once
 * (gateway, coordinator and CLI starting together against one database).
 *
 * Everything happens in ONE transaction that first takes
 * `pg_advisory_xact_lock(MIGRATION_LOCK_KEY)`: a second caller blocks on the lock
 * until the first commits, then sees the migrations as applied and does nothing.
 * The transaction-scoped variant is used (rather than session-level
 * `pg_advisory_lock`) because it can never leak: it is released on commit,
 * rollback, or a dropped connection — and because on PGlite all connections share
 * one session, where session-level advisory locks are re-entrant and would not
 * exclude anyone, whereas transactions are serialised by the socket server.
 *
 * Initialises the data source if needed. Returns the names of the migrations applied.
 */
export async function runMigrations(ds: DataSource): Promise<string[]> {
  if (!ds.isInitialized) await ds.initialize();
  const qr = ds.createQueryRunner();
  await qr.connect();
  try {
    await qr.startTransaction();
    try {
      await qr.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK_KEY]);
      const executor = new MigrationExecutor(ds, qr);
      executor.transaction = 'all'; // the transaction is already open: the executor joins it
      const applied = await executor.executePendingMigrations();
      await qr.commitTransaction();
      return applied.map((m) => m.name);
    } catch (err) {
      if (qr.isTransactionActive) await qr.rollbackTransaction().catch(() => undefined);
      throw err;
    }
  } finally {
    await qr.release();
  }
}

/** Identifier quoting for CREATE DATABASE. */
function quoteIdent(name: string): string {
  return '"' + name.replace(/"/g, '""') + '"';
}

/**
 * Creates the database named in `url` if it does not exist (connects to the
 * `postgres` maintenance database on the same server). Returns true if created.
 * Safe against a concurrent creator (duplicate_database is treated as "exists").
 */
export async function ensureDatabase(url: string): Promise<boolean> {
  const target = new URL(url);
  const dbName = decodeURIComponent(target.pathname.replace(/^\//, ''));
  if (!dbName) throw new Error(`ensureDatabase: no database name in URL ${redactUrl(url)}`);
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const client = new Client({ connectionString: admin.toString() });
  await client.connect();
  try {
    const r = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [dbName]);
    if (r.rowCount) return false;
    try {
      await client.query(`CREATE DATABASE ${quoteIdent(dbName)}`);
      return true;
    } catch (err: any) {
      if (err?.code === '42P04') return false; // duplicate_database: someone else created it
      throw err;
    }
  } finally {
    await client.end();
  }
}

/**
 * Drops the database named in `url` (terminating its other connections). For tests.
 */
export async function dropDatabase(url: string): Promise<void> {
  const target = new URL(url);
  const dbName = decodeURIComponent(target.pathname.replace(/^\//, ''));
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const client = new Client({ connectionString: admin.toString() });
  await client.connect();
  try {
    await client.query(
      'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
      [dbName],
    );
    await client.query(`DROP DATABASE IF EXISTS ${quoteIdent(dbName)}`);
  } finally {
    await client.end();
  }
}

/** The URL with any password replaced by `***`, for logs and error messages. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '<invalid url>';
  }
}
