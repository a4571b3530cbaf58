import { seededRandom } from '@fl/datasets';
import { DEFAULT_SAMPLING } from './base-strategy';
import { withDifferentialPrivacy } from './privacy/dp-strategy';
import { resolvePrivacyParameters } from './privacy/privacy-parameters';
import { createStrategy } from './registry';
import { QFedAvg } from './strategies/qfedavg.strategy';
import { FitAggregation, FitRes, Strategy } from './strategy';
import { UpdateRejectedError, WeightMap } from './weights';

/** A layout of two parameters whose sizes are not multiples of the slices below. */
const SHAPES: Record<string, number[]> = { 'dense.weight': [37, 29], 'dense.bias': [29] };

function randomWeights(seed: number, scale: number): WeightMap {
  const random = seededRandom(seed);
  return new Map(Object.entries(SHAPES).map(([name, shape]) => {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    for (let i = 0; i < data.length; i++) data[i] = (random() - 0.5) * scale;
    return [name, { shape, data }];
  }));
}

const current = randomWeights(1, 2);
const update = (k: number): FitRes => ({ node: `site-${k}`, parameters: randomWeights(10 + k, 2 + k), numExamples: 10 * k, metrics: { loss_before_fit: 0.3 * k } });

/** The strategies whose fold is checked and added a slice at a time, each made afresh (DP's noise from the same seed). */
const CASES: [string, () => Strategy][] = [
  ['QFedAvg', () => new QFedAvg({ ...DEFAULT_SAMPLING, q_param: 0.5, qffl_learning_rate: 0.1 })],
  [
    'FedAvg with central differential privacy',
    () => {
      // The updates differ from the weights by norms of about 35, 42 and 52: the first not clipped, the others clipped.
      const dp = withDifferentialPrivacy(createStrategy('FedAvg'), resolvePrivacyParameters({ noise_multiplier: 0.3, clipping_norm: 40 }), 7);
      dp.configureFit(1, ['site-1', 'site-2', 'site-3']);
      return dp;
    },
  ],
];

/** The new weights' bytes, and the metrics. */
function outcome(aggregation: FitAggregation) {
  const result = aggregation.finish();
  return { bytes: [...result.parameters].map(([name, t]) => [name, Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength)]), metrics: result.metrics, updates: result.updates };
}

describe.each(CASES)('%s: an update added a slice at a time (addAsync)', (_name, make) => {
  const begin = () => make().beginFit(1, current);
  const added = (results: FitRes[]) => {
    const aggregation = begin();
    for (const r of results) aggregation.add(r);
    return outcome(aggregation);
  };

  it('gives the same bits as add, whatever the slices, and lets the event loop run between them', async () => {
    const expected = added([update(1), update(2), update(3)]);
    // 7 values are taken as 4 (the check's slices are whole groups of four).
    for (const slice of [4, 7, 100]) {
      const aggregation = begin();
      for (const k of [1, 2, 3]) {
        let loopRan = false;
        setImmediate(() => (loopRan = true));
        await aggregation.addAsync!(update(k), slice);
        expect(loopRan).toBe(true);
      }
      expect(outcome(aggregation)).toEqual(expected);
    }
    // Slices larger than every parameter: no pause at all, the same bits.
    const whole = begin();
    for (const k of [1, 2, 3]) await whole.addAsync!(update(k), 10_000);
    expect(outcome(whole)).toEqual(expected);
  });

  it('rejects a bad update with UpdateRejectedError, changing nothing, whichever slice holds the fault', async () => {
    const expected = added([update(1), update(3)]);
    const bad = update(2);
    bad.parameters.get('dense.bias')!.data[28] = Number.NaN; // in the last slice of the last parameter
    const aggregation = begin();
    await aggregation.addAsync!(update(1), 16);
    await expect(aggregation.addAsync!(bad, 16)).rejects.toThrow(new UpdateRejectedError("parameter 'dense.bias' holds a non-finite value at index 28", 'non-finite'));
    await aggregation.addAsync!(update(3), 16);
    expect(outcome(aggregation)).toEqual(expected);
  });

  it('takes calls one after another, in the order made; add and finish refuse meanwhile', async () => {
    const expected = added([update(2), update(1), update(3)]);
    const aggregation = begin();
    const adding = [update(2), update(1), update(3)].map((r) => aggregation.addAsync!(r, 8));
    expect(() => aggregation.add(update(4))).toThrow('an update is still being added');
    expect(() => aggregation.finish()).toThrow('an update is still being added');
    await expect(aggregation.finishAsync!()).rejects.toThrow('an update is still being added');
    await Promise.all(adding);
    expect(aggregation.updates).toBe(3);
    expect(outcome(aggregation)).toEqual(expected);
  });

  it('stops at its next slice when the round is abandoned meanwhile', async () => {
    const aggregation = begin();
    const adding = aggregation.addAsync!(update(1), 4);
    setImmediate(() => aggregation.dispose());
    await expect(adding).rejects.toThrow('this aggregation is finished');
    expect(aggregation.updates).toBe(0);
  });
});
