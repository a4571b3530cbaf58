/** A stretch of time in which this coordinator's calls to its database failed for want of a database. */
export interface DatabaseOutage {
  /** The first failed call (ms, this process's clock). */
  from: number;
  /** The last failed call. */
  lastFailure: number;
  /** The first call that succeeded again. */
  to: number;
  seconds: number;
  /** Longer than DATABASE_OUTAGE_MAX_S: the tasks that ran through it fail instead of resuming. */
  tooLong: boolean;
  /** 'database unavailable for N s (DATABASE_OUTAGE_MAX_S=M)' */
  reason: string;
}

/**
 * Measures database outages as this coordinator sees them, from its own calls (the sweep every
 * SWEEP_INTERVAL_S, lease renewals, the tasks' own queries): from the first call that finds the
 * database unavailable to the first that succeeds again, so to within the interval between calls.
 * It decides which tasks an outage longer than DATABASE_OUTAGE_MAX_S ends: those that were running
 * when it began. Nothing can be recorded while the database is down, so the verdict is given when
 * it is back. The clock is injectable for the tests.
 */
export class DatabaseOutages {
  private current?: { from: number; lastFailure: number };
  private lastEnded?: DatabaseOutage;

  constructor(
    private readonly maxS: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** A call found the database unavailable. */
  failed(): void {
    const t = this.now();
    if (this.current) this.current.lastFailure = t;
    else this.current = { from: t, lastFailure: t };
  }

  /** A call succeeded: returns the outage this ends, if one was going on (once). */
  succeeded(): DatabaseOutage | undefined {
    if (!this.current) return undefined;
    const { from, lastFailure } = this.current;
    const to = this.now();
    const seconds = (to - from) / 1000;
    this.current = undefined;
    this.lastEnded = {
      from,
      lastFailure,
      to,
      seconds,
      tooLong: seconds > this.maxS,
      reason: `database unavailable for ${Math.round(seconds)} s (DATABASE_OUTAGE_MAX_S=${this.maxS})`,
    };
    return this.lastEnded;
  }

  /** The reason to fail a task this coordinator has run since `since`, if the outage that just ended outlasted the bound. */
  verdictFor(since: number, outage: DatabaseOutage | undefined = this.lastEnded): string | undefined {
    return outage?.tooLong && since <= outage.lastFailure ? outage.reason : undefined;
  }

  /**
   * For a task another coordinator ran (or this one, before a restart), claimed once its lease had
   * lapsed `lapsedS` seconds ago: the reason to fail it, if the lease lapsed during the last outage
   * and that outage outlasted the bound (its coordinator could not renew it for want of the
   * database). `slackS` widens the outage by how late this coordinator may have noticed its start.
   */
  verdictForLapsedLease(lapsedS: number, slackS: number): string | undefined {
    const o = this.lastEnded;
    if (!o?.tooLong) return undefined;
    const lapsedAt = this.now() - lapsedS * 1000;
    return lapsedAt >= o.from - slackS * 1000 && lapsedAt <= o.to ? o.reason : undefined;
  }
}
