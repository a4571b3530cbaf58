export type CollectOutcome = 'complete' | 'deadline' | 'cancelled';
export type Offer = 'accepted' | 'not-asked' | 'duplicate' | 'closed' | 'stale';

export interface CollectResult {
  outcome: CollectOutcome;
  responded: string[];
  missing: string[];
}

/**
 * Waits for the answers of one phase of one round: done when every worker
 * asked has answered, at the deadline, or on cancel, whichever comes first.
 * It takes an answer only from a worker it asked, once, while open; the
 * handler folds the answer in as it arrives (streaming aggregation). A
 * handler may finish later (a promise): `done` then waits for it, whatever
 * closed the collection, so that what it folds in is all in.
 */
export class RoundCollector<T> {
  private readonly pending: Set<string>;
  private readonly responded: string[] = [];
  private readonly dropped: string[] = [];
  private closed = false;
  /** Handler calls not finished yet. */
  private readonly handling = new Set<Promise<void>>();
  private timer?: NodeJS.Timeout;
  private settle!: (r: CollectResult) => void;
  readonly done: Promise<CollectResult>;

  constructor(
    expected: string[],
    deadlineMs: number,
    private readonly signal: AbortSignal,
    private readonly handle: (node: string, answer: T) => void | Promise<void>,
    /** An answer to an earlier instruction (one that trained from other weights): ignored, its worker still awaited. */
    private readonly isStale: (answer: T) => boolean = () => false,
  ) {
    this.pending = new Set(expected);
    this.done = new Promise((resolve) => (this.settle = resolve));
    if (signal.aborted) this.finish('cancelled');
    else {
      signal.addEventListener('abort', this.onAbort, { once: true });
      this.timer = setTimeout(() => this.finish('deadline'), deadlineMs);
      if (this.pending.size === 0) this.finish('complete');
    }
  }

  offer(node: string, answer: T): Offer {
    return this.accept(node, answer).offer;
  }

  /** The same as offer, settling once the handler has finished with the answer (it rejects if the handler does). */
  async offerAsync(node: string, answer: T): Promise<Offer> {
    const { offer, handled } = this.accept(node, answer);
    await handled;
    return offer;
  }

  private accept(node: string, answer: T): { offer: Offer; handled?: Promise<void> } {
    if (this.closed) return { offer: 'closed' };
    if (!this.pending.has(node)) return { offer: this.responded.includes(node) ? 'duplicate' : 'not-asked' };
    if (this.isStale(answer)) return { offer: 'stale' };
    this.pending.delete(node);
    this.responded.push(node);
    let handled: Promise<void> | undefined;
    try {
      const h = this.handle(node, answer);
      if (h instanceof Promise) {
        handled = h;
        this.handling.add(h);
        void h.catch(() => undefined).finally(() => this.handling.delete(h));
      }
    } finally {
      if (this.pending.size === 0) this.finish('complete');
    }
    return { offer: 'accepted', handled };
  }

  /** Stops waiting for a worker that has gone away; it is reported missing. */
  drop(node: string): void {
    if (this.closed || !this.pending.delete(node)) return;
    this.dropped.push(node);
    if (this.pending.size === 0) this.finish('complete');
  }

  private readonly onAbort = () => this.finish('cancelled');

  private finish(outcome: CollectOutcome): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    this.signal.removeEventListener('abort', this.onAbort);
    const result: CollectResult = { outcome, responded: [...this.responded], missing: [...this.dropped, ...this.pending] };
    if (this.handling.size === 0) this.settle(result);
    else void Promise.allSettled([...this.handling]).then(() => this.settle(result));
  }
}
