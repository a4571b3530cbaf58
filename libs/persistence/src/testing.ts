import { randomBytes } from 'node:crypto';
import { DataSource } from 'typeorm';
import { createDataSource, dropDatabase, ensureDatabase, runMigrations } from './data-source';

/** Server used by tests needing real PostgreSQL. Override with FL_TEST_PG_URL. */
export function testServerUrl(): string {
  return process.env.FL_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
}

/**
 * Creates a fresh, uniquely named database (`fl_test_<hex>`) on the test server (or on
 * `serverUrl`) so parallel test files never see each other's rows. Call `drop()` in afterAll.
 */
export async function createTestDatabase(prefix = 'fl_test', serverUrl = testServerUrl()): Promise<{ url: string; name: string; drop(): Promise<void> }> {
  const name = `${prefix}_${randomBytes(6).toString('hex')}`;
  const u = new URL(serverUrl);
  u.pathname = '/' + name;
  const url = u.toString();
  await ensureDatabase(url);
  return { url, name, drop: () => dropDatabase(url) };
}

export interface MigratedTestDatabase {
  url: string;
  /** A data source for the test's own queries. */
  sql: DataSource;
  /** One more initialised data source: one app instance's pool (two coordinators: two of them). */
  connect(poolSize?: number): Promise<DataSource>;
  /** Closes every data source and drops the database. */
  drop(): Promise<void>;
}

/** A fresh database (as createTestDatabase makes) with every migration run, for tests of several app instances on one database. */
export async function createMigratedTestDatabase(prefix: string): Promise<MigratedTestDatabase> {
  const db = await createTestDatabase(prefix);
  const sources: DataSource[] = [];
  const connect = async (poolSize = 4) => {
    const ds = createDataSource({ url: db.url, poolSize });
    sources.push(ds);
    await ds.initialize();
    return ds;
  };
  const sql = await connect();
  await runMigrations(sql);
  return {
    url: db.url,
    sql,
    connect,
    drop: async () => {
      await Promise.all(sources.map((s) => s.destroy()));
      await db.drop();
    },
  };
}
