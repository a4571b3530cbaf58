import { CompletedRound, MAX_ROUNDS_PER_EVENT, RoundFigures } from '@fl/contracts';
import { RoundEvents } from './round-events';

const figures = (round: number): RoundFigures => ({
  participants: 2, examples: 10, train_loss: round, eval_loss: 0, eval_accuracy: 0, eval_examples: 5,
  started_at: 'a', finished_at: 'b', duration_ms: 1,
});
const rounds = (from: number, to: number): CompletedRound[] => Array.from({ length: to - from + 1 }, (_, i) => ({ round: from + i, figures: figures(from + i) }));

/** A send whose confirms the test gives (or refuses) one by one; `sent` lists each send's rounds. */
function broker() {
  const sent: number[][] = [];
  const confirms: { resolve: () => void; reject: (err: Error) => void }[] = [];
  const send = (batch: CompletedRound[]) =>
    new Promise<void>((resolve, reject) => {
      sent.push(batch.map((r) => r.round));
      confirms.push({ resolve, reject });
    });
  /** Confirms the oldest send still waiting, and lets what follows from it run. */
  const confirm = async () => {
    confirms.shift()!.resolve();
    await settle();
  };
  const refuse = async (message: string) => {
    confirms.shift()!.reject(new Error(message));
    await settle();
  };
  return { sent, send, confirm, refuse, waiting: () => confirms.length };
}

/** Lets promise callbacks run (no timers move). */
const settle = () => jest.advanceTimersByTimeAsync(0);

describe('RoundEvents: round events behind the rounds', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  const make = (b: ReturnType<typeof broker>, windowMs: number, failures: string[] = []) =>
    new RoundEvents(b.send, windowMs, (err, n) => failures.push(`${n}: ${(err as Error).message}`), () => Date.now());

  it('sends a lone round at once, and the rounds that complete while an event is on its way or within the window together, in order', async () => {
    const b = broker();
    const events = make(b, 250);
    events.add(...rounds(1, 1));
    expect(b.sent).toEqual([[1]]);
    events.add(...rounds(2, 2));
    events.add(...rounds(3, 3));
    await b.confirm();
    // Confirmed, but the window since round 1 went out is not over.
    expect(b.sent).toEqual([[1]]);
    events.add(...rounds(4, 4));
    await jest.advanceTimersByTimeAsync(249);
    expect(b.sent).toEqual([[1]]);
    await jest.advanceTimersByTimeAsync(1);
    expect(b.sent).toEqual([[1], [2, 3, 4]]);
    expect(events.unsent).toBe(0);
    // One event on its way at a time: a round completing now waits for that one's confirm and the window.
    events.add(...rounds(5, 5));
    await jest.advanceTimersByTimeAsync(1000);
    expect(b.sent).toEqual([[1], [2, 3, 4]]);
    await b.confirm();
    expect(b.sent).toEqual([[1], [2, 3, 4], [5]]);
    await b.confirm();
    // A round after a quiet spell longer than the window goes at once.
    await jest.advanceTimersByTimeAsync(300);
    events.add(...rounds(6, 6));
    expect(b.sent[3]).toEqual([6]);
  });

  it(`puts at most ${MAX_ROUNDS_PER_EVENT} rounds in one event`, async () => {
    const b = broker();
    const events = make(b, 10);
    events.add(...rounds(1, 600));
    expect(b.sent.map((s) => [s[0], s.length])).toEqual([[1, MAX_ROUNDS_PER_EVENT]]);
    await b.confirm();
    await jest.advanceTimersByTimeAsync(10);
    await b.confirm();
    await jest.advanceTimersByTimeAsync(10);
    expect(b.sent.map((s) => [s[0], s.length])).toEqual([[1, 256], [257, 256], [513, 88]]);
    expect(b.sent.flat()).toEqual(rounds(1, 600).map((r) => r.round));
  });

  it('window 0: one round to an event, each sent once the one before is confirmed', async () => {
    const b = broker();
    const events = make(b, 0);
    events.add(...rounds(1, 3));
    expect(b.sent).toEqual([[1]]);
    await b.confirm();
    expect(b.sent).toEqual([[1], [2]]);
    await b.confirm();
    await b.confirm();
    expect(b.sent).toEqual([[1], [2], [3]]);
    expect(b.waiting()).toBe(0);
  });

  it('keeps the rounds of a refused send, in front, and sends them again after a second, with the rounds after them', async () => {
    const b = broker();
    const failures: string[] = [];
    const events = make(b, 100, failures);
    events.add(...rounds(1, 2));
    events.add(...rounds(3, 3));
    await b.refuse('channel closed by the broker');
    expect(failures).toEqual(['2: channel closed by the broker']);
    expect(events.unsent).toBe(3);
    await jest.advanceTimersByTimeAsync(999);
    expect(b.sent).toEqual([[1, 2]]);
    await jest.advanceTimersByTimeAsync(1);
    expect(b.sent).toEqual([[1, 2], [1, 2, 3]]);
    await b.confirm();
    expect(events.unsent).toBe(0);
  });

  it('flush sends every round at once, whatever the window, and resolves once all are confirmed', async () => {
    const b = broker();
    const events = make(b, 60_000);
    events.add(...rounds(1, 1));
    events.add(...rounds(2, 3));
    let flushed = false;
    const flush = events.flush().then(() => (flushed = true));
    await b.confirm();
    expect(b.sent).toEqual([[1], [2, 3]]);
    expect(flushed).toBe(false);
    await b.confirm();
    await flush;
    expect(events.unsent).toBe(0);
  });

  it('flush rejects with the error of a send that fails, keeping its rounds', async () => {
    const b = broker();
    const events = make(b, 250);
    events.add(...rounds(1, 2));
    const flush = events.flush();
    const outcome = expect(flush).rejects.toThrow('broker gone');
    await b.refuse('broker gone'); // the send on its way when flush was called
    await b.refuse('broker gone'); // flush's own try
    await outcome;
    expect(events.unsent).toBe(2);
    expect(b.sent).toEqual([[1, 2], [1, 2]]);
  });

  it('sends nothing more once disposed', async () => {
    const b = broker();
    const events = make(b, 50);
    events.add(...rounds(1, 1));
    events.add(...rounds(2, 2));
    events.dispose();
    await b.confirm();
    await jest.advanceTimersByTimeAsync(1000);
    expect(b.sent).toEqual([[1]]);
    expect(events.unsent).toBe(1);
  });

  it('refuses a window that is not a number of milliseconds >= 0', () => {
    expect(() => new RoundEvents(async () => undefined, -1)).toThrow('round events window must be a number of milliseconds >= 0, got -1');
    expect(() => new RoundEvents(async () => undefined, Number.NaN)).toThrow('got NaN');
  });
});
