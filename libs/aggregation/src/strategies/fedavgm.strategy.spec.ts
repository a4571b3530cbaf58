import { fit, flat, weights } from '../../test/support';
import { DEFAULT_SAMPLING } from '../base-strategy';
import { FedAvgM } from './fedavgm.strategy';

describe('FedAvgM', () => {
  const zeros = new Array(9).fill(0);

  it('is FedAvg with learning rate 1 and no momentum', () => {
    const s = new FedAvgM({ ...DEFAULT_SAMPLING, server_learning_rate: 1, server_momentum: 0 });
    expect(flat(s.aggregateFit(1, weights(zeros), [fit('a', new Array(9).fill(2), 1)]).parameters)).toEqual(new Array(9).fill(2));
  });

  it('accumulates momentum across rounds (hand-computed)', () => {
    const s = new FedAvgM({ ...DEFAULT_SAMPLING, server_learning_rate: 0.5, server_momentum: 0.5 });
    // Round 1: g = 0 - 2 = -2, m = -2, w = 0 - 0.5 * -2 = 1.
    const w1 = s.aggregateFit(1, weights(zeros), [fit('a', new Array(9).fill(2), 1)]).parameters;
    expect(flat(w1)).toEqual(new Array(9).fill(1));
    // Round 2: g = 1 - 2 = -1, m = 0.5 * -2 + -1 = -2, w = 1 - 0.5 * -2 = 2.
    const w2 = s.aggregateFit(2, w1, [fit('a', new Array(9).fill(2), 1)]).parameters;
    expect(flat(w2)).toEqual(new Array(9).fill(2));
  });
});
