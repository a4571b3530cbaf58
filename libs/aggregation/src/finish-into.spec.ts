import { DEFAULT_SAMPLING } from './base-strategy';
import { withDifferentialPrivacy } from './privacy/dp-strategy';
import { resolvePrivacyParameters } from './privacy/privacy-parameters';
import { createStrategy } from './registry';
import { QFedAvg } from './strategies/qfedavg.strategy';
import { FitAggregation, FitRes, Strategy } from './strategy';
import { WeightMap } from './weights';

/** Values per slice here, and a layout with one parameter of several slices (so the finish pauses) and a short one. */
const SLICE = 8;
const SIZES = { big: 4 * SLICE + 3, small: 5 };

function model(seed: number, scale = 1): WeightMap {
  let x = seed;
  const next = () => (((x = (x * 1103515245 + 12345) % 2 ** 31) / 2 ** 31 - 0.5) * scale);
  return new Map(Object.entries(SIZES).map(([name, n]) => [name, { shape: [n], data: Float32Array.from({ length: n }, next) }]));
}

/** An update: the global weights moved by a small seeded step. */
function update(current: WeightMap, node: string, seed: number): FitRes {
  const step = model(seed, 1e-3);
  const parameters: WeightMap = new Map([...current].map(([name, t]) => [name, { shape: t.shape, data: t.data.map((v, i) => v + step.get(name)!.data[i]) }]));
  return { node, parameters, numExamples: 10 + seed, metrics: { loss_before_fit: 0.5 + seed / 10 } };
}

function fed(strategy: Strategy, current: WeightMap): FitAggregation {
  const agg = strategy.beginFit(1, current);
  for (const [k, node] of ['a', 'b', 'c'].entries()) agg.add(update(current, node, k + 1));
  return agg;
}

const central = (extra: object = {}) => resolvePrivacyParameters({ noise_multiplier: 0.5, clipping_norm: 0.5, ...extra });
const cases: [string, () => Strategy][] = [
  ['QFedAvg', () => new QFedAvg({ ...DEFAULT_SAMPLING, q_param: 0.2, qffl_learning_rate: 0.1 })],
  // The same noise seed on both sides: the noise must be drawn in the same order however the work is sliced.
  ['central DP around FedAvg', () => withDifferentialPrivacy(createStrategy('FedAvg'), central(), 7)],
  ['central DP around FedAdam, adaptive clipping', () => withDifferentialPrivacy(createStrategy('FedAdam', { eta: 0.05 }), central({ adaptive_clipping: true, clipped_count_stddev: 1 }), 7)],
];

describe('finishAsync over a large model: the new weights written where they are sent from', () => {
  it.each(cases)('%s: the same bits and metrics as finish, in the arrays given, letting the event loop run between slices', async (_name, make) => {
    const current = model(1);
    const expected = fed(make(), current).finish();

    const into = new Map(Object.entries(SIZES).map(([name, n]) => [name, new Float32Array(n)]));
    let turns = 0;
    for (let k = 0; k < 3; k++) setImmediate(() => turns++);
    const later = fed(make(), current).finishAsync!(into, SLICE);
    expect(turns).toBe(0);
    const result = await later;
    expect(turns).toBeGreaterThan(0);

    for (const [name, t] of expected.parameters) {
      expect(result.parameters.get(name)!.data).toBe(into.get(name));
      expect(result.parameters.get(name)!.shape).toEqual(t.shape);
      expect(Buffer.from(into.get(name)!.buffer).equals(Buffer.from(t.data.buffer))).toBe(true);
    }
    expect(result.metrics).toEqual(expected.metrics);
    expect(result.updates).toBe(3);
    // The weights moved.
    expect(Buffer.from(into.get('small')!.buffer).equals(Buffer.from(current.get('small')!.data.buffer))).toBe(false);
  });

  it.each(cases)('%s: prefault, run while the updates come in, changes no bit', async (_name, make) => {
    const current = model(1);
    const expected = fed(make(), current).finish();
    const agg = make().beginFit(1, current);
    const prefaulted = agg.prefault!(4);
    // One update before the prefault has begun, one while it runs (it pauses every 4 values), one after.
    agg.add(update(current, 'a', 1));
    await new Promise((resolve) => setImmediate(resolve));
    agg.add(update(current, 'b', 2));
    await prefaulted;
    agg.add(update(current, 'c', 3));
    const result = agg.finish();
    for (const [name, t] of expected.parameters) expect(Buffer.from(result.parameters.get(name)!.data.buffer).equals(Buffer.from(t.data.buffer))).toBe(true);
  });

  it('without arrays given, finishAsync allocates its own; a finished aggregation refuses to finish again', async () => {
    const current = model(1);
    const agg = fed(cases[0][1](), current);
    const result = await agg.finishAsync!();
    expect(result.parameters.get('big')!.data).toHaveLength(SIZES.big);
    await expect(agg.finishAsync!()).rejects.toThrow('this aggregation is finished');
    expect(() => agg.finish()).toThrow('this aggregation is finished');
  });
});
