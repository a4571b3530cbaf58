import { describeBrokerUrl } from './broker-url';
import { DEFAULT_DEAD_LETTER_EXCHANGE, DEFAULT_EXCHANGE } from './message-bus';

/**
 * What a site's own RabbitMQ user may do, and nothing more:
 *  - configure: only its queues fl.worker.<node> and fl.worker.<node>.control (declare them; nothing else);
 *  - write: its queue (bind it), the event exchange (publish) and the dead-letter exchange (which its
 *    queue's declaration names);
 *  - read: its queue (consume) and the event exchange (bind to it);
 *  - topic permissions on the event exchange: it may bind only to its own, its use cases' and the
 *    all-workers routing keys (so it never sees another site's or the coordinators' traffic), and may
 *    publish only presence messages to the coordinators and round results to a coordinator.
 * RabbitMQ checks `user_id` on every message against the connection's user, so the coordinator knows
 * which site sent what.
 */
export interface SiteGrant {
  node: string;
  user: string;
  vhost: string;
  configure: string;
  write: string;
  read: string;
  topic: { exchange: string; write: string; read: string };
}

const NODE_NAME = /^[A-Za-z0-9_-]{1,64}$/;
const WORD = '[A-Za-z0-9_-]+';

const escapeRegex = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** A site's broker user: its node name followed by the platform's SITE_USER_SUFFIX. */
export function siteUser(node: string, suffix = ''): string {
  return `${node}${suffix}`;
}

export function siteGrant(node: string, opts: { vhost: string; suffix?: string; exchange?: string; deadLetterExchange?: string }): SiteGrant {
  if (!NODE_NAME.test(node)) throw new Error(`site name '${node}' must be 1-64 letters, digits, _ or -`);
  const exchange = opts.exchange ?? DEFAULT_EXCHANGE;
  const dlx = opts.deadLetterExchange ?? DEFAULT_DEAD_LETTER_EXCHANGE;
  // Its work queue and its control queue (cancels, read while it trains).
  const queue = `${escapeRegex(`fl.worker.${node}`)}(\\.control)?`;
  const n = escapeRegex(node);
  return {
    node,
    user: siteUser(node, opts.suffix),
    vhost: opts.vhost,
    configure: `^${queue}$`,
    write: `^(${queue}|${escapeRegex(exchange)}|${escapeRegex(dlx)})$`,
    read: `^(${queue}|${escapeRegex(exchange)})$`,
    topic: {
      exchange,
      write: `^(coordinators\\.all\\.node\\.(registered|heartbeat|leaving)|coordinator\\.${WORD}\\.round\\.(fit|evaluate|stats)-result)$`,
      read: `^(worker\\.${n}\\.#|nodes\\.all\\.#|control\\.all\\.#|workers\\.${WORD}\\.#)$`,
    },
  };
}

/** The vhost named by a RabbitMQ URL (`/` when the path is empty). */
export function vhostOf(amqpUrl: string): string {
  describeBrokerUrl(amqpUrl);
  const path = new URL(amqpUrl).pathname;
  return path && path !== '/' ? decodeURIComponent(path.slice(1)) : '/';
}

/** The URL a site connects with: the platform's broker address and vhost, the site's user and password. */
export function siteAmqpUrl(amqpUrl: string, user: string, password: string): string {
  const u = new URL(amqpUrl);
  u.username = encodeURIComponent(user);
  u.password = encodeURIComponent(password);
  return u.toString();
}

/** The same grant as `rabbitmqctl` command lines, for brokers whose management API is not enabled. */
export function rabbitmqctlEnrolCommands(grant: SiteGrant, password: string): string[][] {
  return [
    ['rabbitmqctl', 'add_user', grant.user, password],
    ['rabbitmqctl', 'set_permissions', '-p', grant.vhost, grant.user, grant.configure, grant.write, grant.read],
    ['rabbitmqctl', 'set_topic_permissions', '-p', grant.vhost, grant.user, grant.topic.exchange, grant.topic.write, grant.topic.read],
  ];
}

/** Deleting the user also closes its open connections (RabbitMQ does that itself). */
export function rabbitmqctlRevokeCommands(user: string): string[][] {
  return [['rabbitmqctl', 'delete_user', user]];
}

/** A command line as a POSIX shell would need it typed: every word single-quoted. */
export function shellLine(argv: string[]): string {
  return argv.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
}

/** The few calls of RabbitMQ's management HTTP API that enrolment needs. */
export class RabbitMqManagement {
  private readonly base: string;
  private readonly auth: string;

  /** `url`: e.g. http://admin:secret@rabbitmq:15672 (the credentials of a broker administrator). */
  constructor(url: string, private readonly timeoutMs = 10_000) {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      throw new Error('RABBITMQ_MANAGEMENT_URL is not a valid URL (not shown, it may contain a password)');
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('RABBITMQ_MANAGEMENT_URL must be an http:// or https:// URL');
    this.auth = `Basic ${Buffer.from(`${decodeURIComponent(u.username || 'guest')}:${decodeURIComponent(u.password || 'guest')}`).toString('base64')}`;
    u.username = '';
    u.password = '';
    this.base = u.toString().replace(/\/+$/, '');
  }

  async enrol(grant: SiteGrant, password: string): Promise<void> {
    await this.call('PUT', `/api/users/${enc(grant.user)}`, { password, tags: '' });
    await this.call('PUT', `/api/permissions/${enc(grant.vhost)}/${enc(grant.user)}`, { configure: grant.configure, write: grant.write, read: grant.read });
    await this.call('PUT', `/api/topic-permissions/${enc(grant.vhost)}/${enc(grant.user)}`, grant.topic);
  }

  /** Deletes the user (RabbitMQ closes its connections); false if there was no such user. */
  async revoke(user: string): Promise<boolean> {
    const status = await this.call('DELETE', `/api/users/${enc(user)}`, undefined, [404]);
    return status !== 404;
  }

  private async call(method: string, path: string, body?: unknown, allowed: number[] = []): Promise<number> {
    let res: Response;
    try {
      res = await fetch(`${this.base}${path}`, {
        method,
        headers: { authorization: this.auth, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      throw new Error(`RabbitMQ management API at ${this.base} unreachable: ${(err as Error).message}`, { cause: err });
    }
    if (res.ok || allowed.includes(res.status)) return res.status;
    const text = (await res.text().catch(() => '')).slice(0, 300);
    throw new Error(`RabbitMQ management API: ${method} ${path.replace(/\/api\/users\/.*/, '/api/users/…')} answered ${res.status} ${text}`);
  }
}

const enc = encodeURIComponent;
