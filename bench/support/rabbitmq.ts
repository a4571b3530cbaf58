import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { Cleanup } from './cleanup';

const run = promisify(execFile);

/** Broker the benchmarks use; the vhost is appended. Override with FL_BENCH_RABBITMQ_URL (a local broker: vhosts are made with rabbitmqctl). */
export function brokerBaseUrl(): string {
  return (process.env.FL_BENCH_RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672').replace(/\/+$/, '');
}

/**
 * Creates a throw-away vhost `fl_bench_<hex>` with full permissions for the
 * URL's user, and registers its deletion (which removes every queue and
 * exchange in it). Returns the URL to connect to.
 */
export async function createBenchVhost(cleanup: Cleanup): Promise<{ url: string; vhost: string }> {
  const vhost = `fl_bench_${randomBytes(4).toString('hex')}`;
  const base = new URL(brokerBaseUrl());
  const user = decodeURIComponent(base.username || 'guest');
  await run('rabbitmqctl', ['-q', 'add_vhost', vhost]);
  cleanup.add(`deleting vhost ${vhost}`, () => run('rabbitmqctl', ['-q', 'delete_vhost', vhost]));
  await run('rabbitmqctl', ['-q', 'set_permissions', '-p', vhost, user, '.*', '.*', '.*']);
  return { url: `${brokerBaseUrl()}/${encodeURIComponent(vhost)}`, vhost };
}
