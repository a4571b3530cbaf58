import { fit, flat, weights } from '../../test/support';
import { UpdateRejectedError } from '../weights';
import { FedAvg } from './fedavg.strategy';
import { DEFAULT_SAMPLING } from '../base-strategy';

describe('FedAvg', () => {
  const current = weights([0, 0, 0, 0, 0, 0, 0, 0, 0]);

  it('averages weighted by examples and aggregates fit metrics the same way', () => {
    const s = new FedAvg(DEFAULT_SAMPLING);
    const agg = s.beginFit(1, current);
    agg.add(fit('a', [1, 2, 3, 4, 5, 6, 7, 8, 9], 10, { train_loss: 1 }));
    agg.add(fit('b', [3, 2, 1, 0, -1, -2, -3, -4, -5], 30, { train_loss: 0.2 }));
    const out = agg.finish();
    // (10 * 1 + 30 * 3) / 40 = 2.5, ...
    expect(flat(out.parameters)).toEqual([2.5, 2, 1.5, 1, 0.5, 0, -0.5, -1, -1.5]);
    expect(out.metrics.train_loss).toBeCloseTo((10 * 1 + 30 * 0.2) / 40, 12);
    expect(out).toMatchObject({ updates: 2, examples: 40 });
  });

  it('refuses a bad update without changing the aggregate', () => {
    const agg = new FedAvg(DEFAULT_SAMPLING).beginFit(1, current);
    agg.add(fit('a', [1, 1, 1, 1, 1, 1, 1, 1, 1], 5));
    expect(() => agg.add(fit('b', [NaN, 1, 1, 1, 1, 1, 1, 1, 1], 5))).toThrow(UpdateRejectedError);
    expect(() => agg.add({ ...fit('c', [9, 9, 9, 9, 9, 9, 9, 9, 9], 50), registeredExamples: 40 })).toThrow('example count 50 is beyond the 40 the worker registered');
    expect(flat(agg.finish().parameters)).toEqual([1, 1, 1, 1, 1, 1, 1, 1, 1]);
  });

  it('refuses updates whose difference to the global weights is beyond maxUpdateNorm', () => {
    const agg = new FedAvg(DEFAULT_SAMPLING, { maxUpdateNorm: 2 }).beginFit(1, current);
    agg.add(fit('a', [1, 1, 1, 1, 0, 0, 0, 0, 0], 5)); // norm 2
    expect(() => agg.add(fit('b', [3, 0, 0, 0, 0, 0, 0, 0, 0], 5))).toThrow(expect.objectContaining({ code: 'norm-too-large' }));
    expect(agg.updates).toBe(1);
  });

  it('averages evaluate losses and metrics by examples', () => {
    const s = new FedAvg(DEFAULT_SAMPLING);
    const r = s.aggregateEvaluate(1, [
      { node: 'a', loss: 1, numExamples: 1, metrics: { accuracy: 0 } },
      { node: 'b', loss: 0, numExamples: 3, metrics: { accuracy: 1 } },
    ]);
    expect(r).toEqual({ loss: 0.25, metrics: { accuracy: 0.75 }, examples: 4 });
    expect(s.aggregateEvaluate(1, [])).toBeNull();
  });

  it('does not depend on arrival order beyond float rounding', () => {
    const s = new FedAvg(DEFAULT_SAMPLING);
    const rs = [fit('a', [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9], 7), fit('b', [5, 6, 7, 8, 9, 1, 2, 3, 4], 11), fit('c', [-1, -2, -3, -4, 0, 0, 1, 1, 1], 3)];
    expect(flat(s.aggregateFit(1, current, rs).parameters)).toEqual(flat(s.aggregateFit(1, current, [rs[2], rs[0], rs[1]]).parameters));
  });

  it('uses the server-side evaluation when one is given', () => {
    const s = new FedAvg(DEFAULT_SAMPLING, { evaluateFn: (round, p) => ({ loss: round + flat(p)[0], metrics: {} }) });
    expect(s.evaluate(3, weights([1, 0, 0, 0, 0, 0, 0, 0, 0]))).toEqual({ loss: 4, metrics: {} });
    expect(new FedAvg(DEFAULT_SAMPLING).evaluate(3, current)).toBeNull();
  });
});
