import { RoundCollector } from './round-collector';

describe('RoundCollector', () => {
  it('completes when every worker asked has answered, taking each once', async () => {
    const seen: string[] = [];
    const c = new RoundCollector<number>(['a', 'b'], 60_000, new AbortController().signal, (n, v) => seen.push(`${n}=${v}`));
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
    const c = new RoundCollector<number>(['a'], 60_000, new AbortController().signal, (n, v) => seen.push(`${n}=${v}`), (v) => v < 0);
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

  it('stops waiting for a worker that left, reporting it missing', async () => {
    const c = new RoundCollector<number>(['a', 'b'], 60_000, new AbortController().signal, () => undefined);
    c.offer('a', 1);
    c.drop('x');
    c.drop('b');
    await expect(c.done).resolves.toEqual({ outcome: 'complete', responded: ['a'], missing: ['b'] });
    expect(c.offer('b', 2)).toBe('closed');
  });
});
