import { RoundCollector } from './round-collector';

describe('RoundCollector', () => {
  it('completes when every worker asked has answered, taking each once', async () => {
    const seen: string[] = [];
    const c = new RoundCollector<number>(['a', 'b'], 60_000, new AbortController().signal, (n, v) => void seen.push(`${n}=${v}`));
    expect(c.offer('a', 1)).toBe('accepted');
    expect(c.offer('a', 2)).toBe('duplicate');
    expect(c.offer('x', 3)).toBe('not-asked');
    expect(c.offer('b', 4)).toBe('accepted');
    await expect(c.done).resolves.toEqual({ outcome: 'complete', responded: ['a', 'b'], missing: [] });
    expect(c.offer('b', 5)).toBe('closed');
    expect(seen).toEqual(['a=1', 'b=4']);
  });

  it('ignores a stale answer and still waits for the worker', async () => {
    const seen: string[] = [];
    const c = new RoundCollector<number>(['a'], 60_000, new AbortController().signal, (n, v) => void seen.push(`${n}=${v}`), (v) => v < 0);
    expect(c.offer('a', -1)).toBe('stale');
    expect(c.offer('a', 2)).toBe('accepted');
    await expect(c.done).resolves.toEqual({ outcome: 'complete', responded: ['a'], missing: [] });
    expect(seen).toEqual(['a=2']);
  });

  it('closes at the deadline with what it has', async () => {
    jest.useFakeTimers();
    try {
      const c = new RoundCollector<number>(['a', 'b'], 1000, new AbortController().signal, () => undefined);
      c.offer('b', 1);
      jest.advanceTimersByTime(1000);
      await expect(c.done).resolves.toEqual({ outcome: 'deadline', responded: ['b'], missing: ['a'] });
      expect(c.offer('a', 1)).toBe('closed');
    } finally {
      jest.useRealTimers();
    }
  });

  it('stops at once on cancel', async () => {
    const ac = new AbortController();
    const c = new RoundCollector<number>(['a'], 60_000, ac.signal, () => undefined);
    ac.abort();
    await expect(c.done).resolves.toEqual({ outcome: 'cancelled', responded: [], missing: ['a'] });
  });

  it('counts an answer whose handling threw as answered', async () => {
    const c = new RoundCollector<number>(['a'], 60_000, new AbortController().signal, () => {
      throw new Error('bad update');
    });
    expect(() => c.offer('a', 1)).toThrow('bad update');
    await expect(c.done).resolves.toMatchObject({ outcome: 'complete', responded: ['a'] });
  });

  it('waits for a handler that finishes later, whatever closed the collection; offerAsync settles with it', async () => {
    const ac = new AbortController();
    const finishing = new Map<string, () => void>();
    const folded: string[] = [];
    const c = new RoundCollector<number>(['a', 'b', 'c'], 60_000, ac.signal, (n) =>
      new Promise<void>((resolve) => finishing.set(n, () => {
        folded.push(n);
        resolve();
      })),
    );
    let aSettled = false;
    const a = c.offerAsync('a', 1).then((offer) => {
      aSettled = true;
      return offer;
    });
    expect(c.offer('b', 2)).toBe('accepted');
    ac.abort(); // closes the collection with a and b still being handled
    expect(c.offer('c', 3)).toBe('closed');
    let done = false;
    void c.done.then(() => (done = true));
    finishing.get('b')!();
    await new Promise((resolve) => setImmediate(resolve));
    expect([done, aSettled]).toEqual([false, false]);
    finishing.get('a')!();
    await expect(a).resolves.toBe('accepted');
    await expect(c.done).resolves.toEqual({ outcome: 'cancelled', responded: ['a', 'b'], missing: ['c'] });
    expect(folded).toEqual(['b', 'a']);
  });

  it("settles done when a later handler fails; offerAsync rejects with the handler's error", async () => {
    const c = new RoundCollector<number>(['a'], 60_000, new AbortController().signal, () => Promise.reject(new Error('fold failed')));
    await expect(c.offerAsync('a', 1)).rejects.toThrow('fold failed');
    await expect(c.done).resolves.toEqual({ outcome: 'complete', responded: ['a'], missing: [] });
    await expect(c.offerAsync('a', 2)).resolves.toBe('closed');
  });

  it('stops waiting for a worker that left, reporting it missing', async () => {
    const c = new RoundCollector<number>(['a', 'b'], 60_000, new AbortController().signal, () => undefined);
    c.offer('a', 1);
    c.drop('x');
    c.drop('b');
    await expect(c.done).resolves.toEqual({ outcome: 'complete', responded: ['a'], missing: ['b'] });
    expect(c.offer('b', 2)).toBe('closed');
  });
});
