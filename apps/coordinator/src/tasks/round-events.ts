import { CompletedRound, MAX_ROUNDS_PER_EVENT } from '@fl/contracts';

/** After a send fails (the broker refused it), the rounds are sent again after this long at the least. */
const RETRY_AFTER_MS = 1000;

/**
 * One task's round events on their way to the gateway, behind the rounds.
 *
 * Quick rounds do not cost an event each: a round's event goes at once when
 * none is on its way and the last went out at least `windowMs` ago; the
 * rounds that complete meanwhile go together in the next one, at most
 * MAX_ROUNDS_PER_EVENT to an event, in order. One event is on its way at a
 * time. `send` publishes a list of rounds (one round as `round.completed`,
 * several as `rounds.completed`) and resolves on the broker's confirm.
 * `windowMs` 0: one round to an event, each sent once the one before is
 * confirmed (the events of releases before rounds.completed).
 *
 * Nothing is dropped: a failed send keeps its rounds, in front, for the next
 * try (after RETRY_AFTER_MS or the window, whichever is longer), and flush()
 * sends what is left before the task's end is announced. A coordinator that
 * dies with rounds not yet sent leaves them to the one that resumes the task,
 * which sends every completed round again (the gateway ignores duplicates).
 */
export class RoundEvents {
  private readonly pending: CompletedRound[] = [];
  private sending?: Promise<void>;
  private timer?: NodeJS.Timeout;
  private lastSentAt = -Infinity;
  private lastFailure?: unknown;
  private flushing = false;
  private closed = false;

  constructor(
    private readonly send: (rounds: CompletedRound[]) => Promise<void>,
    private readonly windowMs: number,
    private readonly onFailure: (err: unknown, rounds: number) => void = () => undefined,
    private readonly now: () => number = () => performance.now(),
  ) {
    if (!Number.isFinite(windowMs) || windowMs < 0) throw new RangeError(`round events window must be a number of milliseconds >= 0, got ${windowMs}`);
  }

  /** Rounds waiting to be sent: not yet sent, or refused and kept for the next try (a send on its way is not counted). */
  get unsent(): number {
    return this.pending.length;
  }

  /** Completed (stored) rounds, oldest first: their events go now or with the next ones. */
  add(...rounds: CompletedRound[]): void {
    this.pending.push(...rounds);
    this.pump();
  }

  /** Sends every round added so far, without waiting for the window; rejects with the send's error when one fails. */
  async flush(): Promise<void> {
    this.flushing = true;
    try {
      this.clearTimer();
      for (;;) {
        if (this.sending) {
          await this.sending;
          continue;
        }
        if (this.pending.length === 0) return;
        await this.sendNext();
        if (this.lastFailure !== undefined) throw this.lastFailure;
      }
    } finally {
      this.flushing = false;
      this.pump();
    }
  }

  /** Stops the timer; rounds not sent stay unsent (the task ended otherwise, or its coordinator is stopping). */
  dispose(): void {
    this.clearTimer();
    this.closed = true;
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private pump(): void {
    if (this.closed || this.flushing || this.sending || this.timer || this.pending.length === 0) return;
    const gap = this.lastFailure === undefined ? this.windowMs : Math.max(this.windowMs, RETRY_AFTER_MS);
    const wait = this.lastSentAt + gap - this.now();
    if (wait > 0) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.pump();
      }, wait);
      this.timer.unref();
      return;
    }
    void this.sendNext();
  }

  private sendNext(): Promise<void> {
    const batch = this.pending.splice(0, this.windowMs === 0 ? 1 : MAX_ROUNDS_PER_EVENT);
    this.lastSentAt = this.now();
    const sending = this.send(batch).then(
      () => {
        this.lastFailure = undefined;
      },
      (err) => {
        this.pending.unshift(...batch);
        this.lastFailure = err;
        this.onFailure(err, batch.length);
      },
    );
    this.sending = sending.finally(() => {
      this.sending = undefined;
      this.pump();
    });
    return this.sending;
  }
}
