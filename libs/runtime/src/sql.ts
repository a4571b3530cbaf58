/**
 * TypeORM's postgres driver answers `query()` with the rows for SELECT and
 * INSERT, but with [rows, rowCount] for UPDATE and DELETE: this gives the rows
 * either way, so a RETURNING clause reads the same everywhere.
 */
export function rowsOf<T>(result: unknown): T[] {
  if (Array.isArray(result) && result.length === 2 && Array.isArray(result[0]) && typeof result[1] === 'number') {
    return result[0] as T[];
  }
  return result as T[];
}

/** SQLSTATEs of a server that is going away or not there yet: admin/crash shutdown, cannot connect now. */
const UNAVAILABLE_SQLSTATES = new Set(['57P01', '57P02', '57P03']);
const UNAVAILABLE_SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENOTFOUND']);

/**
 * Whether an error means the database could not be reached (restarting,
 * down, connection lost), as opposed to a query it refused: worth waiting
 * out and trying again, never a reason to fail a task or drop a message.
 * TypeORM wraps the driver's error in `driverError`.
 */
export function isDatabaseUnavailable(err: unknown): boolean {
  for (let e = err as { code?: unknown; message?: unknown; driverError?: unknown } | undefined, depth = 0; e && depth < 3; e = e.driverError as typeof e, depth++) {
    const code = typeof e.code === 'string' ? e.code : '';
    if (UNAVAILABLE_SQLSTATES.has(code) || code.startsWith('08') || UNAVAILABLE_SOCKET_CODES.has(code)) return true;
    if (/Connection terminated|connection timeout|timeout exceeded when trying to connect/i.test(String(e.message ?? ''))) return true;
    // TypeORM, when a transaction's connection was lost under it: the query runner is released, later queries refuse.
    if ((e as { name?: unknown }).name === 'QueryRunnerAlreadyReleasedError') return true;
  }
  return false;
}

/**
 * Runs `op`, and while the database is unavailable runs it again (every
 * 0.25 s, backing off to 5 s) for up to `maxWaitMs`; any other error, or an
 * outage longer than that, is thrown. For message handlers: the message
 * stays unacknowledged meanwhile, instead of being dead-lettered and lost.
 */
export async function retryWhileDatabaseUnavailable<T>(
  op: () => Promise<T>,
  opts: { maxWaitMs: number; onRetry?: (err: unknown) => void },
): Promise<T> {
  const deadline = Date.now() + opts.maxWaitMs;
  for (let waitMs = 250; ; waitMs = Math.min(waitMs * 2, 5000)) {
    try {
      return await op();
    } catch (err) {
      if (!isDatabaseUnavailable(err) || Date.now() + waitMs > deadline) throw err;
      opts.onRetry?.(err);
      await new Promise((resolve) => setTimeout(resolve, waitMs));
    }
  }
}
