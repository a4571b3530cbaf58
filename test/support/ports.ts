import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/**
 * Ports for the servers a test starts (an app's HTTP listener, a throw-away
 * broker or database).
 *
 * A port the kernel hands out for `listen(0)` comes from the ephemeral range,
 * the same range it takes the local port of every outgoing connection from.
 * Released and given to a child process to bind later, such a port can by
 * then be the local end of some app's connection to RabbitMQ or PostgreSQL,
 * and the child fails with EADDRINUSE; a broker or database restarted on its
 * old port can lose it the same way. So the ports come from below the
 * ephemeral range instead, which only a listener asking for that number
 * takes, each one checked free on every interface, none handed out twice by
 * this process, and each jest worker drawing from its own slice.
 */

const LOWEST = 10000;
const handedOut = new Set<number>();

/** The first port of the kernel's ephemeral range (Linux; 32768, its default, elsewhere). */
export function ephemeralRangeStart(): number {
  try {
    const first = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    if (Number.isInteger(first) && first > LOWEST + 1000) return first;
  } catch {
    // not Linux
  }
  return 32768;
}

/** The ports this process draws from: its jest worker's share of [LOWEST, ephemeral start). */
export function portSlice(workerId = Number(process.env.JEST_WORKER_ID ?? '1'), workers = 8): { from: number; to: number } {
  const end = ephemeralRangeStart();
  const size = Math.floor((end - LOWEST) / workers);
  const index = (Math.max(1, workerId) - 1) % workers;
  return { from: LOWEST + index * size, to: LOWEST + (index + 1) * size };
}

function bindable(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', (err: NodeJS.ErrnoException) => resolve(host === '::' && (err.code === 'EAFNOSUPPORT' || err.code === 'EADDRNOTAVAIL')));
    srv.listen({ port, host, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

/** A port no listener holds (on any interface), outside the ephemeral range, not returned before by this process. */
export async function freePort(): Promise<number> {
  const { from, to } = portSlice();
  const span = to - from;
  const start = Math.floor(Math.random() * span);
  for (let i = 0; i < span; i++) {
    const port = from + ((start + i) % span);
    if (handedOut.has(port)) continue;
    // the apps listen on every interface; the broker and the database on 127.0.0.1
    if ((await bindable(port, '::')) && (await bindable(port, '0.0.0.0')) && (await bindable(port, '127.0.0.1'))) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error(`no free port in ${from}..${to - 1}`);
}
