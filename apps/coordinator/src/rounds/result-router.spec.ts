import { ResultRouter } from './result-router';
import { RoundCollector } from './round-collector';

describe('ResultRouter', () => {
  const collector = (nodes: string[]) => new RoundCollector<unknown>(nodes, 60_000, new AbortController().signal, () => undefined);

  it('routes an answer to the collector of its task, round and phase only', async () => {
    const router = new ResultRouter();
    const fit = collector(['a']);
    router.register(1, 1, 'fit', fit);
    expect(router.route(1, 1, 'evaluate', 'a', { payload: {} })).toBe('closed');
    expect(router.route(2, 1, 'fit', 'a', { payload: {} })).toBe('closed');
    expect(router.route(1, 1, 'fit', 'a', { payload: {} })).toBe('accepted');
    await expect(fit.done).resolves.toMatchObject({ outcome: 'complete' });
  });

  it('routeAsync settles once the round has finished with the answer', async () => {
    const router = new ResultRouter();
    let finish!: () => void;
    const fit = new RoundCollector<unknown>(['a'], 60_000, new AbortController().signal, () => new Promise<void>((resolve) => (finish = resolve)));
    router.register(1, 1, 'fit', fit);
    await expect(router.routeAsync(1, 2, 'fit', 'a', { payload: {} })).resolves.toBe('closed');
    let settled = false;
    const routed = router.routeAsync(1, 1, 'fit', 'a', { payload: {} }).then((offer) => ((settled = true), offer));
    await new Promise((resolve) => setImmediate(resolve));
    expect(settled).toBe(false);
    finish();
    await expect(routed).resolves.toBe('accepted');
  });

  it('does not wait for a worker that left, in open rounds or in rounds opened later, until it is back', async () => {
    const router = new ResultRouter();
    const open = collector(['a', 'b']);
    router.register(1, 1, 'fit', open);
    router.dropNode('b');
    router.route(1, 1, 'fit', 'a', { payload: {} });
    await expect(open.done).resolves.toEqual({ outcome: 'complete', responded: ['a'], missing: ['b'] });

    const later = collector(['b']);
    router.register(1, 1, 'evaluate', later);
    await expect(later.done).resolves.toEqual({ outcome: 'complete', responded: [], missing: ['b'] });

    router.nodeBack('b');
    const after = collector(['b']);
    router.register(1, 2, 'fit', after);
    expect(router.route(1, 2, 'fit', 'b', { payload: {} })).toBe('accepted');
  });
});
