import { createStrategy, hasServerState, StateBuffer, StateMap, WeightMap } from '@fl/aggregation';
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
    const bytes = (x: StateBuffer) => Buffer.from(x.buffer, x.byteOffset, x.byteLength);
    for (const [k, v] of saved) {
      expect(v).toBeInstanceOf(Float32Array); // model-shaped state is float32, as the weights
      expect(back.get(k)).toBeInstanceOf(Float32Array);
      expect(bytes(back.get(k)!).equals(bytes(v))).toBe(true);
    }

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
    const m = Float32Array.of(1.5, -2, 3);
    const v = Float32Array.of(0.25, 4, 1e-9);
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
    expect(() => decodeStrategyState('FedAvgM', weights)).toThrow("strategy state has format undefined, expected 'typed-le' (or the older 'f64-le')");
    const odd = encodeSafetensors(new Map([['momentum/x', { dtype: 'U8' as const, shape: [5], data: new Uint8Array(5) }]]), { strategy: 'FedAvgM', format: 'typed-le' });
    expect(() => decodeStrategyState('FedAvgM', odd)).toThrow("strategy state 'momentum/x' is neither a float32 nor a float64 buffer");
    // The older format held float64 buffers only.
    const f32InOld = encodeSafetensors(new Map([['momentum/x', { shape: [2], data: Float32Array.of(1, 2) }]]), { strategy: 'FedAvgM', format: 'f64-le' });
    expect(() => decodeStrategyState('FedAvgM', f32InOld)).toThrow("strategy state 'momentum/x' is neither a float32 nor a float64 buffer");
  });

  it('keeps float64 buffers (the privacy accounting) as float64 beside float32 state, each to the bit', () => {
    const m = Float32Array.of(0.1, -0.2, 0.3);
    const rdp = Float64Array.of(0.1, 1e-300, Math.PI);
    const buf = encodeStrategyState('FedAdam', new Map<string, StateBuffer>([['m/dense.bias', m], ['privacy/rdp', rdp]]))!;
    const back = decodeStrategyState('FedAdam', buf);
    expect(back.get('m/dense.bias')).toBeInstanceOf(Float32Array);
    expect(Array.from(back.get('m/dense.bias')!)).toEqual(Array.from(m));
    expect(back.get('privacy/rdp')).toBeInstanceOf(Float64Array);
    expect(Array.from(back.get('privacy/rdp')!)).toEqual(Array.from(rdp));
  });

  it('reads a checkpoint written before the state became float32 (format f64-le), and a strategy resumes from it', () => {
    // Bytes as the earlier release wrote them: every buffer a U8 tensor of little-endian float64s.
    const oldM = Float64Array.of(0.5, -0.25);
    const oldV = Float64Array.of(0.01, 0.04);
    const u8 = (x: Float64Array) => ({ dtype: 'U8' as const, shape: [x.byteLength], data: new Uint8Array(x.buffer.slice(0)) });
    const buf = encodeSafetensors(new Map([['m/dense.bias', u8(oldM)], ['v/dense.bias', u8(oldV)]]), { strategy: 'FedAdam', format: 'f64-le' });
    const back = decodeStrategyState('FedAdam', buf);
    expect(back.get('m/dense.bias')).toBeInstanceOf(Float64Array);
    expect(Array.from(back.get('v/dense.bias')!)).toEqual([0.01, 0.04]);

    // Loaded into a strategy, the state becomes float32: its next save has the new layout.
    const s = createStrategy('FedAdam', { eta: 0.05 });
    if (!hasServerState(s)) throw new Error('FedAdam keeps state');
    const template: WeightMap = new Map([['dense.bias', { shape: [2], data: Float32Array.of(0, 0) }]]);
    s.loadServerState(back, template);
    const saved = s.saveServerState();
    expect(saved.get('m/dense.bias')).toBeInstanceOf(Float32Array);
    expect(Array.from(saved.get('m/dense.bias')!)).toEqual(Array.from(Float32Array.from(oldM)));
    expect(Array.from(saved.get('v/dense.bias')!)).toEqual(Array.from(Float32Array.from(oldV)));
  });
});
