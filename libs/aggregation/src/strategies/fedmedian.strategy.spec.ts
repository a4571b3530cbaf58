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
});
