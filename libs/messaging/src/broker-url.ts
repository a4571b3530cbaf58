import { BrokerConnectionError } from './errors';

/** `amqp://user@host:port/vhost` for logs and errors: never the password. */
export function describeBrokerUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    // The text itself may hold a password, so it is not repeated.
    throw new BrokerConnectionError('invalid RabbitMQ URL (not shown, it may contain a password)');
  }
  const user = parsed.username ? `${decodeURIComponent(parsed.username)}@` : '';
  const port = parsed.port ? `:${parsed.port}` : '';
  const vhost = parsed.pathname && parsed.pathname !== '/' ? parsed.pathname : '';
  return `${parsed.protocol}//${user}${parsed.hostname}${port}${vhost}`;
}

/** The user name in a RabbitMQ URL (decoded), or undefined when it has none (amqplib then logs in as guest). */
export function brokerUser(url: string): string | undefined {
  describeBrokerUrl(url); // validates without echoing the URL
  const user = new URL(url).username;
  return user ? decodeURIComponent(user) : undefined;
}
