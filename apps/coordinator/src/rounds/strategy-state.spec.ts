import { createStrategy, hasServerState, StateMap, WeightMap } from '@fl/aggregation';
import { encodeSafetensors } from '@fl/models';
import { decodeStrategyState, encodeStrategyState, strategyStateSegments, StrategyStateError } from './strategy-state';

const layout = (): WeightMap => new Map([
  ['dense.weight', { shape: [2, 2], data: Float32Array.of(0.5, -1, 2, 0) }],
  ['dense.bias', { shape: [2], data: Float32Array.of(0.25, -0.75) }],
]);

describe('strategy state in a checkpoint', () => {
  it('round-trips FedAdam m and v to the bit, and a restored strategy steps as the original', () => {
    const a = createStrategy('FedAdam', { eta: 0.05 });
    const current = layout();
    const update = (k: number): WeightMap => new Map([...current].map(([n, t]) => [n, { shape: t.shape, data: t.data.map((x, i) => x + 0.1 * (k + 1) * (i + 1) / 3) }]));
    const run = (s: ReturnType<typeof createStrategy>, w: WeightMap) => {
      const agg = s.beginFit(1, w);
      agg.add({ node: 'a', parameters: update(0), numExamples: 7 });
      agg.add({ node: 'b', parameters: update(1), numExamples: 11 });
      return agg.finish().parameters;
    };
    const w1 = run(a, current);
    if (!hasServerState(a)) throw new Error('FedAdam keeps state');
    const saved = a.saveServerState();
    const buf = encodeStrategyState('FedAdam', saved)!;
    const back = decodeStrategyState('FedAdam', buf);
    expect([...back.keys()].sort()).toEqual([...saved.keys()].sort());
    const bytes = (x: Float64Array) => Buffer.from(x.buffer, x.byteOffset, x.byteLength);
    for (const [k, v] of saved) expect(bytes(back.get(k)!).equals(bytes(v))).toBe(true);

    const b = createStrategy('FedAdam', { eta: 0.05 });
    if (!hasServerState(b)) throw new Error('FedAdam keeps state');
    b.loadServerState(back, w1);
    expect(Array.from(run(b, w1).get('dense.weight')!.data)).toEqual(Array.from(run(a, w1).get('dense.weight')!.data));
  });

  it('stores nothing for an empty state', () => {
    expect(encodeStrategyState('FedAvg', new Map())).toBeNull();
    expect(strategyStateSegments('FedAvg', new Map())).toBeNull();
  });

  it("gives the same bytes as segments, the state's own buffers among them, and reads an aligned state back as views on it", () => {
    const m = Float64Array.of(1.5, -2, 3);
    const v = Float64Array.of(0.25, 4, 1e-9);
    const state: StateMap = new Map([['m/dense.bias', m], ['v/dense.bias', v]]);
    const segments = strategyStateSegments('FedAdam', state)!;
    expect(segments).toHaveLength(3);
    expect(segments[1].buffer).toBe(m.buffer); // not a copy
    const whole = encodeStrategyState('FedAdam', state)!;
    expect(Buffer.concat(segments).equals(whole)).toBe(true);
    // Read back into a buffer of its own (as a checkpoint's pieces are): the values are views on it.
    const own = Buffer.from(new ArrayBuffer(whole.length));
    whole.copy(own);
    const back = decodeStrategyState('FedAdam', own);
    expect(back.get('m/dense.bias')!.buffer).toBe(own.buffer);
    expect(Array.from(back.get('v/dense.bias')!)).toEqual(Array.from(v));
    // At an odd offset: copies, the same values.
    const odd = Buffer.alloc(whole.length + 1);
    whole.copy(odd, 1);
    const copied = decodeStrategyState('FedAdam', odd.subarray(1));
    expect(copied.get('m/dense.bias')!.buffer).not.toBe(odd.buffer);
    expect(Array.from(copied.get('m/dense.bias')!)).toEqual(Array.from(m));
  });

  it("refuses another strategy's state and bytes that are no state, naming the problem", () => {
    const state: StateMap = new Map([['momentum/dense.bias', Float64Array.of(1, 2)]]);
    const buf = encodeStrategyState('FedAvgM', state)!;
    expect(() => decodeStrategyState('FedYogi', buf)).toThrow(new StrategyStateError('strategy state was saved by "FedAvgM", not by FedYogi'));
    expect(() => decodeStrategyState('FedAvgM', Buffer.from('not safetensors'))).toThrow(StrategyStateError);
    const weights = encodeSafetensors(new Map([['w', { shape: [1], data: Float32Array.of(1) }]]));
    expect(() => decodeStrategyState('FedAvgM', weights)).toThrow("strategy state has format undefined, expected 'f64-le'");
    const odd = encodeSafetensors(new Map([['momentum/x', { dtype: 'U8' as const, shape: [5], data: new Uint8Array(5) }]]), { strategy: 'FedAvgM', format: 'f64-le' });
    expect(() => decodeStrategyState('FedAvgM', odd)).toThrow("strategy state 'momentum/x' is not a float64 buffer");
  });
});
