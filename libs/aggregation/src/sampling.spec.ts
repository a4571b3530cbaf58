import { InsufficientClientsError, sampleClients, sampleSize } from './sampling';

describe('client sampling', () => {
  const nodes = Array.from({ length: 20 }, (_, i) => `site-${String(i).padStart(2, '0')}`);
  const req = { phase: 'fit' as const, fraction: 0.3, minClients: 2, minAvailableClients: 2, serverRound: 1, seed: 7 };

  it('takes max(floor(available * fraction), min_clients), as Flower does', () => {
    expect(sampleSize(20, 0.3, 2)).toBe(6);
    expect(sampleSize(5, 0.3, 2)).toBe(2);
    expect(sampleClients(nodes, req)).toHaveLength(6);
  });

  it('is a pure function of the node set, round, phase and seed', () => {
    const a = sampleClients(nodes, req);
    expect(sampleClients([...nodes].reverse(), req)).toEqual(a);
    expect(new Set(a).size).toBe(a.length);
    expect(a.every((n) => nodes.includes(n))).toBe(true);
    expect(sampleClients(nodes, { ...req, serverRound: 2 })).not.toEqual(a);
    expect(sampleClients(nodes, { ...req, seed: 8 })).not.toEqual(a);
  });

  it('spreads the choice over the nodes across rounds', () => {
    const counts = new Map<string, number>();
    for (let r = 1; r <= 300; r++) for (const n of sampleClients(nodes, { ...req, serverRound: r })) counts.set(n, (counts.get(n) ?? 0) + 1);
    // Expected 300 * 6 / 20 = 90 per node.
    for (const n of nodes) expect(counts.get(n)).toBeGreaterThan(55);
  });

  it('names the parameter that cannot be met', () => {
    expect(() => sampleClients(['a'], req)).toThrow(new InsufficientClientsError('1 worker(s) available, min_available_clients is 2', 'min_available_clients'));
    expect(() => sampleClients(['a', 'b'], { ...req, minClients: 3 })).toThrow('2 worker(s) available, 3 needed for fit (min_fit_clients 3, fraction_fit 0.3)');
  });

  it('returns nobody for evaluate when fraction_evaluate is 0', () => {
    expect(sampleClients(nodes, { ...req, phase: 'evaluate', fraction: 0 })).toEqual([]);
  });
});
