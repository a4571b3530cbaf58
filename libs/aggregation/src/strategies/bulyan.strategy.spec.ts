import { fit, flat, weights } from '../../test/support';
import { DEFAULT_SAMPLING } from '../base-strategy';
import { Bulyan } from './bulyan.strategy';

describe('Bulyan', () => {
  const cur = weights(new Array(9).fill(0));
  const at = (x: number) => new Array(9).fill(x);

  it('stays near the honest updates with one hostile worker of seven', () => {
    const s = new Bulyan({ ...DEFAULT_SAMPLING, num_malicious_clients: 1 });
    const updates = [0.9, 0.95, 1, 1.05, 1.1, 1.02].map((v, k) => fit(`h${k}`, at(v), 10));
    const out = s.aggregateFit(1, cur, [fit('x', at(1e4), 10), ...updates]);
    expect(out.selectedNodes).toHaveLength(5);
    expect(out.selectedNodes).not.toContain('x');
    const v = flat(out.parameters)[0];
    expect(v).toBeGreaterThan(0.95);
    expect(v).toBeLessThan(1.05);
  });

  it('needs 4f + 3 updates', () => {
    const s = new Bulyan({ ...DEFAULT_SAMPLING, num_malicious_clients: 1 });
    expect(() => s.aggregateFit(1, cur, [1, 2, 3, 4, 5, 6].map((v, k) => fit(`h${k}`, at(v), 1)))).toThrow('needs at least 7 updates, got 6');
  });
});
