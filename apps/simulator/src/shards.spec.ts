import { join } from 'node:path';
import { bundledDataDir } from '@fl/datasets';
import { dealShards, parseDealing } from './shards';

describe('dealShards', () => {
  const base = { dataPath: join(bundledDataDir(), 'iris.csv'), useCases: ['iris'], seed: 42, splitSeed: 0 };

  it('deals iris to disjoint shards that together hold every row, each split 80/20 as a worker splits its file', () => {
    const { shards, sources } = dealShards({ ...base, workers: 20, dealing: parseDealing('iid') });
    expect(sources.get('iris')).toBe(base.dataPath);
    expect(shards).toHaveLength(20);
    const sizes = shards.map((s) => s.get('iris')!.train.n + s.get('iris')!.test.n);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(150);
    expect(Math.min(...sizes)).toBeGreaterThanOrEqual(7);
    for (const s of shards) expect(s.get('iris')!.test.n).toBeGreaterThan(0);
    // Disjoint: every row (its four measurements and label) appears once over all shards.
    const rows = new Set<string>();
    let total = 0;
    for (const s of shards) {
      for (const part of [s.get('iris')!.train, s.get('iris')!.test]) {
        for (let r = 0; r < part.n; r++) {
          rows.add(`${Array.from(part.x.subarray(r * 4, r * 4 + 4)).join(',')}:${part.labels[r]}`);
          total++;
        }
      }
    }
    expect(total).toBe(150);
    expect(rows.size).toBe(147); // iris has three duplicated rows
  });

  it('gives each worker one class with label:1', () => {
    const { shards } = dealShards({ ...base, workers: 6, dealing: parseDealing('label:1') });
    for (const s of shards) expect(new Set(s.get('iris')!.train.labels).size).toBe(1);
  });

  it('gives every worker every row with copy, whatever the number of workers', () => {
    const { shards } = dealShards({ ...base, workers: 1000, dealing: parseDealing('copy') });
    expect(shards).toHaveLength(1000);
    expect(shards[999].get('iris')).toBe(shards[0].get('iris'));
    expect(shards[0].get('iris')!.train.n).toBe(120);
  });

  it('refuses more workers than rows unless every worker gets a copy, and a use case without a file', () => {
    expect(() => dealShards({ ...base, workers: 151, dealing: parseDealing('iid') })).toThrow(/cannot deal 150 rows to 151 workers .*SIM_PARTITION=copy/);
    expect(() => dealShards({ ...base, useCases: ['digits'], workers: 2, dealing: parseDealing('iid') })).toThrow(/no CSV file .* has the columns of use case 'digits'/);
  });

  it('finds each use case its file in a folder', () => {
    const { shards, sources } = dealShards({ ...base, dataPath: bundledDataDir(), useCases: undefined, workers: 3, dealing: parseDealing('dirichlet:0.5') });
    expect([...sources.keys()].sort()).toEqual(['breast_cancer', 'digits', 'iris']);
    expect(shards[0].size).toBe(3);
  });
});
