/**
 * The wall clock to the microsecond: a Date has milliseconds, too coarse to
 * time rounds of a few milliseconds from stored timestamps. The monotonic
 * clock (`performance.now()`) anchored to the wall clock; the anchor is taken
 * again when the two part by more than `STEP_MS`, i.e. when the system clock
 * was stepped (NTP slews both clocks alike, so they do not drift apart
 * otherwise). Between steps the times it gives never go backwards.
 */
export class PreciseClock {
  static readonly STEP_MS = 2;
  private anchor: number;

  constructor(
    private readonly wall: () => number = () => Date.now(),
    private readonly monotonic: () => number = () => performance.now(),
  ) {
    this.anchor = this.wall() - this.monotonic();
  }

  /** Milliseconds since the epoch, with a fraction. */
  nowMs(): number {
    const mono = this.monotonic();
    const wall = this.wall();
    // Date.now() truncates: the anchored time runs up to a millisecond ahead of it.
    if (Math.abs(this.anchor + mono - wall) > PreciseClock.STEP_MS) this.anchor = wall - mono;
    return this.anchor + mono;
  }

  /** Now as a Date (milliseconds) and as ISO 8601 with microseconds, for PostgreSQL's timestamptz. */
  now(): { date: Date; iso: string } {
    const ms = this.nowMs();
    const whole = Math.floor(ms);
    const micros = Math.min(999, Math.floor((ms - whole) * 1000));
    const date = new Date(whole);
    return { date, iso: date.toISOString().replace('Z', `${String(micros).padStart(3, '0')}Z`) };
  }
}

const processClock = new PreciseClock();

/** Now, from this process's PreciseClock. */
export function preciseNow(): { date: Date; iso: string } {
  return processClock.now();
}
