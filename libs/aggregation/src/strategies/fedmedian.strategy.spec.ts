import { fit, flat, weights } from '../../test/support';
import { DEFAULT_SAMPLING } from '../base-strategy';
import { FedMedian } from './fedmedian.strategy';

describe('FedMedian', () => {
  it('takes the coordinate-wise median, the mean of the middle two for an even count, ignoring example counts', () => {
    const s = new FedMedian(DEFAULT_SAMPLING);
    const cur = weights(new Array(9).fill(0));
    const odd = s.aggregateFit(1, cur, [fit('a', [1, 9, 0, 0, 0, 0, 0, 0, 0], 1), fit('b', [2, -9, 0, 0, 0, 0, 0, 0, 0], 100), fit('c', [100, 0, 0, 0, 0, 0, 0, 0, 0], 1)]);
    expect(flat(odd.parameters).slice(0, 2)).toEqual([2, 0]);
    const even = s.aggregateFit(1, cur, [fit('a', [1, 0, 0, 0, 0, 0, 0, 0, 0], 1), fit('b', [2, 0, 0, 0, 0, 0, 0, 0, 0], 1), fit('c', [4, 0, 0, 0, 0, 0, 0, 0, 0], 1), fit('d', [1e6, 0, 0, 0, 0, 0, 0, 0, 0], 1)]);
    expect(flat(even.parameters)[0]).toBe(3);
  });

  it("keeps only the global weights' layout without a norm bound (their values may be let go), the weights themselves with one", () => {
    const cur = weights(new Array(9).fill(0));
    const agg = new FedMedian(DEFAULT_SAMPLING).beginFit(1, cur);
    for (const t of cur.values()) t.data.fill(NaN); // what the aggregation holds of them, if anything, is now poison
    agg.add(fit('a', [1, 1, 1, 1, 1, 1, 1, 1, 1], 1));
    agg.add(fit('b', [3, 3, 3, 3, 3, 3, 3, 3, 3], 1));
    const bad = fit('c', new Array(9).fill(2), 1);
    bad.parameters.get('layer.bias')!.shape = [1, 3];
    expect(() => agg.add(bad)).toThrow("parameter 'layer.bias' has shape [1,3], expected [3]");
    expect(flat(agg.finish().parameters)).toEqual(new Array(9).fill(2));

    // With a norm bound, updates are measured against the weights they started from.
    const bounded = new FedMedian(DEFAULT_SAMPLING, { maxUpdateNorm: 1 }).beginFit(1, weights(new Array(9).fill(0)));
    expect(() => bounded.add(fit('a', new Array(9).fill(1), 1))).toThrow('L2 norm of the update (difference to the global weights) is 3.00000, beyond the bound 1');
  });

  it('finishes the same way asynchronously, letting the event loop run between blocks of coordinates', async () => {
    const shapes = { p: [3000] }; // blocks of at least 1,024 coordinates: three
    const update = (k: number) => ({ node: `n${k}`, parameters: weights(Array.from({ length: 3000 }, (_, i) => Math.sin(i * (k + 1))), shapes), numExamples: 1 });
    const run = (s: FedMedian) => {
      const agg = s.beginFit(1, weights(new Array(3000).fill(0), shapes));
      for (let k = 0; k < 3; k++) agg.add(update(k));
      return agg;
    };
    const strategy = new FedMedian(DEFAULT_SAMPLING, { spill: { blockBytes: 1 } });
    const sync = flat(run(strategy).finish().parameters);
    let turns = 0;
    for (let k = 0; k < 5; k++) setImmediate(() => turns++);
    const later = run(strategy).finishAsync!();
    expect(turns).toBe(0);
    expect(flat((await later).parameters)).toEqual(sync);
    expect(turns).toBeGreaterThan(0);
  });
});
