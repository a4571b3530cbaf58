import { fit, flat, weights } from '../../test/support';
import { DEFAULT_SAMPLING } from '../base-strategy';
import { FedTrimmedAvg } from './fedtrimmedavg.strategy';

describe('FedTrimmedAvg', () => {
  it('cuts floor(beta * n) values at each end before averaging', () => {
    const s = new FedTrimmedAvg({ ...DEFAULT_SAMPLING, beta: 0.2 });
    const values = [-1000, 1, 2, 3, 1000];
    const out = s.aggregateFit(1, weights(new Array(9).fill(0)), values.map((v, k) => fit(`n${k}`, [v, v, v, v, v, v, v, v, v], 1)));
    expect(flat(out.parameters)).toEqual(new Array(9).fill(2));
  });
});
