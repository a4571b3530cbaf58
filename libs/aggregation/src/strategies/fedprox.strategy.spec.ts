import { fit, flat, weights } from '../../test/support';
import { DEFAULT_SAMPLING } from '../base-strategy';
import { FedProx } from './fedprox.strategy';

describe('FedProx', () => {
  it('sends proximal_mu in every fit config beside the task config, and aggregates as FedAvg', () => {
    const s = new FedProx({ ...DEFAULT_SAMPLING, proximal_mu: 0.01 });
    const ins = s.configureFit(1, ['a', 'b', 'c'], { local_epochs: 2 });
    expect(ins).toHaveLength(3);
    for (const i of ins) expect(i.config).toEqual({ local_epochs: 2, proximal_mu: 0.01 });
    expect(s.fitConfig()).toEqual({ proximal_mu: 0.01 });
    const out = s.aggregateFit(1, weights(new Array(9).fill(0)), [fit('a', new Array(9).fill(1), 1), fit('b', new Array(9).fill(4), 2)]);
    expect(flat(out.parameters)).toEqual(new Array(9).fill(3));
  });
});
