import { fit, flat, weights } from '../../test/support';
import { DEFAULT_SAMPLING } from '../base-strategy';
import { Krum } from './krum.strategy';

describe('Krum and Multi-Krum', () => {
  const cur = weights(new Array(9).fill(0));
  const at = (x: number) => new Array(9).fill(x);
  const honest = [fit('h1', at(1), 10), fit('h2', at(1.1), 30), fit('h3', at(0.9), 10), fit('h4', at(1.05), 10)];
  const hostile = [fit('x1', at(-30), 10), fit('x2', at(50), 10)];

  it('picks one honest update and never a hostile one', () => {
    const s = new Krum({ ...DEFAULT_SAMPLING, num_malicious_clients: 1, num_clients_to_keep: 0 });
    const out = s.aggregateFit(1, cur, [...hostile, ...honest]);
    expect(out.selectedNodes).toHaveLength(1);
    expect(out.selectedNodes![0]).toMatch(/^h/);
  });

  it('Multi-Krum averages the best m, weighted by examples', () => {
    const s = new Krum({ ...DEFAULT_SAMPLING, num_malicious_clients: 2, num_clients_to_keep: 2 });
    const out = s.aggregateFit(1, cur, [...hostile, ...honest, fit('h5', at(1), 10)]);
    expect(out.selectedNodes!.every((n) => n.startsWith('h'))).toBe(true);
    expect(flat(out.parameters)[0]).toBeGreaterThan(0.9);
    expect(flat(out.parameters)[0]).toBeLessThan(1.1);
  });

  it('refuses to run with too few updates for the number of hostile workers', () => {
    const s = new Krum({ ...DEFAULT_SAMPLING, num_malicious_clients: 2, num_clients_to_keep: 0 });
    expect(() => s.aggregateFit(1, cur, honest)).toThrow('Krum with num_malicious_clients 2 needs at least 7 updates, got 4');
  });
});
