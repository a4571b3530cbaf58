import { FedAvgAggregator, weightedMean } from './fedavg';
import { UpdateRejectedError, WeightMap } from './weights';

const w = (a: number[], b: number[]): WeightMap =>
  new Map([
    ['layers.0.weight', { shape: [2, 2], data: Float32Array.from(a) }],
    ['layers.0.bias', { shape: [2], data: Float32Array.from(b) }],
  ]);

describe('FedAvgAggregator', () => {
  const template = w([0, 0, 0, 0], [0, 0]);

  it('weights each update by its example count (hand-computed)', () => {
    const agg = new FedAvgAggregator(template);
    agg.add(w([1, 2, 3, 4], [1, -1]), 10);
    agg.add(w([3, 2, 1, 0], [0, 2]), 30);
    // (10*1 + 30*3)/40 = 2.5, (20+60)/40 = 2, (30+30)/40 = 1.5, (40+0)/40 = 1
    const r = agg.result();
    expect(Array.from(r.get('layers.0.weight')!.data)).toEqual([2.5, 2, 1.5, 1]);
    // (10*1 + 0)/40 = 0.25, (-10 + 60)/40 = 1.25
    expect(Array.from(r.get('layers.0.bias')!.data)).toEqual([0.25, 1.25]);
    expect(agg.examples).toBe(40);
    expect(agg.updates).toBe(2);
  });

  it('does not depend on arrival order', () => {
    const a = new FedAvgAggregator(template);
    const b = new FedAvgAggregator(template);
    const u1 = w([0.1, 0.2, 0.3, 0.4], [1, 2]);
    const u2 = w([5, 6, 7, 8], [3, 4]);
    const u3 = w([-1, -2, -3, -4], [0.5, 0.5]);
    a.add(u1, 7); a.add(u2, 11); a.add(u3, 3);
    b.add(u3, 3); b.add(u1, 7); b.add(u2, 11);
    expect(Array.from(a.result().get('layers.0.weight')!.data)).toEqual(Array.from(b.result().get('layers.0.weight')!.data));
  });

  it('rejects bad updates and leaves the aggregate unchanged', () => {
    const agg = new FedAvgAggregator(template);
    agg.add(w([1, 1, 1, 1], [1, 1]), 5);
    expect(() => agg.add(w([1, NaN, 1, 1], [1, 1]), 5)).toThrow("parameter 'layers.0.weight' holds a non-finite value at index 1");
    expect(() => agg.add(w([1, 1, 1, 1], [1, 1]), 0)).toThrow(UpdateRejectedError);
    const wrongShape: WeightMap = new Map([
      ['layers.0.weight', { shape: [4], data: new Float32Array(4) }],
      ['layers.0.bias', { shape: [2], data: new Float32Array(2) }],
    ]);
    expect(() => agg.add(wrongShape, 5)).toThrow("parameter 'layers.0.weight' has shape [4], expected [2,2]");
    const extra = w([1, 1, 1, 1], [1, 1]);
    extra.set('other', { shape: [1], data: new Float32Array(1) });
    expect(() => agg.add(extra, 5)).toThrow("unexpected parameter 'other'");
    expect(agg.updates).toBe(1);
    expect(Array.from(agg.result().get('layers.0.bias')!.data)).toEqual([1, 1]);
  });

  it('refuses to produce a result from nothing', () => {
    expect(() => new FedAvgAggregator(template).result()).toThrow('no update');
  });

  it('averages metrics weighted by examples', () => {
    expect(weightedMean([{ value: 1, examples: 1 }, { value: 0, examples: 3 }])).toBe(0.25);
    expect(weightedMean([])).toBeNaN();
  });
});
