import { seededRandom } from '@fl/datasets';
import { fit, flat, weights } from '../test/support';
import { FedAvgAggregator } from './fedavg';
import { createStrategy } from './registry';
import { hasServerState, ServerStateError, ServerStateful } from './server-state';
import { Strategy } from './strategy';
import { StateMap } from './weight-arithmetic';
import { WeightMap } from './weights';

const zeros = () => weights(new Array(9).fill(0));
const update = (node: string, v: number, n: number) => fit(node, Array.from({ length: 9 }, (_, i) => v + i * 0.25), n);

function round(s: Strategy, r: number, current: WeightMap, results = [update('a', 1, 3), update('b', -0.5, 5)]): WeightMap {
  const agg = s.beginFit(r, current);
  for (const x of results) agg.add(x);
  return agg.finish().parameters;
}

describe('server state of stateful strategies', () => {
  it.each([
    ['FedAvgM', { server_momentum: 0.9, server_learning_rate: 0.7 }, ['momentum']],
    ['FedAdam', {}, ['m', 'v']],
    ['FedYogi', {}, ['m', 'v']],
    ['FedAdagrad', {}, ['m', 'v']],
  ])('%s continues from saved state exactly as the instance that saved it', (name, params, slots) => {
    const a = createStrategy(name, params);
    const b = createStrategy(name, params);
    expect(hasServerState(a) && hasServerState(b)).toBe(true);
    const sa = a as Strategy & ServerStateful;
    expect(sa.saveServerState().size).toBe(0);
    const w1 = round(a, 1, zeros());
    const saved = sa.saveServerState();
    expect([...saved.keys()].sort()).toEqual(slots.flatMap((s) => [`${s}/layer.bias`, `${s}/layer.weight`]).sort());
    (b as Strategy & ServerStateful).loadServerState(saved, w1);
    const next = [update('a', 2, 4), update('b', 0.5, 1)];
    const fromA = round(a, 2, w1, next);
    const fromB = round(b, 2, w1, next);
    expect(flat(fromB)).toEqual(flat(fromA));
    // A fresh instance (state restarted) ends elsewhere: the state matters.
    expect(flat(round(createStrategy(name, params), 2, w1, next))).not.toEqual(flat(fromA));
  });

  it('saves copies and loads copies: later rounds change neither the saved nor the loaded map', () => {
    const s = createStrategy('FedAdam') as Strategy & ServerStateful;
    const w1 = round(s, 1, zeros());
    const saved = s.saveServerState();
    const before = Array.from(saved.get('m/layer.weight')!);
    const t = createStrategy('FedAdam') as Strategy & ServerStateful;
    t.loadServerState(saved, w1);
    round(s, 2, w1);
    round(t, 2, w1);
    expect(Array.from(saved.get('m/layer.weight')!)).toEqual(before);
  });

  it('refuses state that does not fit the model or the strategy, naming the entry, and keeps its own', () => {
    const s = createStrategy('FedAvgM', { server_momentum: 0.5 }) as Strategy & ServerStateful;
    const w1 = round(s, 1, zeros());
    const good = s.saveServerState();
    const cases: [StateMap, string][] = [
      [new Map([...good, ['m/layer.bias', new Float64Array(3)]]), "unknown entry 'm/layer.bias'"],
      [new Map([...good, ['momentum/other', new Float64Array(3)]]), "entry 'momentum/other' for a parameter the model does not have"],
      [new Map([['momentum/layer.weight', new Float64Array(6)], ['momentum/layer.bias', new Float64Array(2)]]), "'momentum/layer.bias' has 2 values, the model's parameter has 3"],
      [new Map([['momentum/layer.weight', new Float64Array(6)]]), "lacks 'momentum/layer.bias'"],
    ];
    for (const [bad, message] of cases) {
      expect(() => s.loadServerState(bad, w1)).toThrow(ServerStateError);
      expect(() => s.loadServerState(bad, w1)).toThrow(message);
    }
    const after = s.saveServerState();
    expect([...after.keys()]).toEqual([...good.keys()]);
    for (const [key, values] of good) expect(Array.from(after.get(key)!)).toEqual(Array.from(values));
  });

  it('stateless strategies have none', () => {
    for (const name of ['FedAvg', 'FedProx', 'FedMedian', 'FedTrimmedAvg', 'QFedAvg']) {
      expect(hasServerState(createStrategy(name, name === 'FedProx' ? { proximal_mu: 0.1 } : {}))).toBe(false);
    }
  });
});

describe('FedAvg through the registry', () => {
  it('gives the same float32 bits as FedAvgAggregator', () => {
    const rand = seededRandom(7);
    const template: WeightMap = new Map([
      ['w', { shape: [64, 33], data: new Float32Array(64 * 33) }],
      ['b', { shape: [33], data: new Float32Array(33) }],
    ]);
    const updates = [37, 41, 42, 3, 29].map((n, k) => {
      const u: WeightMap = new Map();
      for (const [name, t] of template) u.set(name, { shape: t.shape, data: Float32Array.from(t.data, () => (rand() - 0.5) * 10 ** (k - 2)) });
      return { node: `site-${k}`, parameters: u, numExamples: n };
    });
    const reference = new FedAvgAggregator(template);
    for (const u of updates) reference.add(u.parameters, u.numExamples);
    const agg = createStrategy('fedavg').beginFit(1, template);
    for (const u of updates) agg.add(u);
    const ours = agg.finish().parameters;
    for (const [name, t] of reference.result()) {
      expect(Buffer.from(ours.get(name)!.data.buffer).equals(Buffer.from(t.data.buffer))).toBe(true);
    }
  });
});
