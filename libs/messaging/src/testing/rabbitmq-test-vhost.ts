import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Broker used by tests; `FL_TEST_RABBITMQ_URL` overrides the project machine's default. */
export const TEST_BROKER_URL = process.env.FL_TEST_RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672';

export interface TestVhost {
  name: string;
  url: string;
  rabbitmqctl(...args: string[]): Promise<string>;
  dispose(): Promise<void>;
}

/** A broker other than the test default, and how to run `rabbitmqctl` against its node. */
export interface TestBroker {
  url: string;
  rabbitmqctl(...args: string[]): Promise<string>;
}

/**
 * A fresh vhost per test file (created with `rabbitmqctl`, which needs root or the rabbitmq user),
 * so that parallel runs never see each other's exchanges, queues or messages.
 */
export async function createTestVhost(prefix: string, broker?: TestBroker): Promise<TestVhost> {
  const name = `${prefix}-${randomBytes(4).toString('hex')}`;
  const brokerUrl = broker?.url ?? TEST_BROKER_URL;
  const user = new URL(brokerUrl).username || 'guest';
  const rabbitmqctl = broker?.rabbitmqctl ?? (async (...args: string[]) => (await run('rabbitmqctl', ['-q', ...args])).stdout);
  await rabbitmqctl('add_vhost', name);
  await rabbitmqctl('set_permissions', '-p', name, user, '.*', '.*', '.*');
  return {
    name,
    url: `${brokerUrl.replace(/\/$/, '')}/${encodeURIComponent(name)}`,
    rabbitmqctl,
    dispose: async () => {
      await rabbitmqctl('delete_vhost', name);
    },
  };
}
