import { randomBytes } from 'node:crypto';
import { dropDatabase, ensureDatabase } from './data-source';

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
