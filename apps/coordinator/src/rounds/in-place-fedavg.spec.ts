import { createStrategy, UpdateRejectedError, WeightMap } from '@fl/aggregation';
import { decodeSafetensors, encodeSafetensors, NamedTensors } from '@fl/models';
import { InPlaceFedAvg, layoutOf } from './in-place-fedavg';

function weights(seed: number): NamedTensors {
  let x = seed;
  const rand = () => ((x = (x * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1;
  return new Map([
    ['a.weight', { shape: [3, 5], data: Float32Array.from({ length: 15 }, rand) }],
    ['a.bias', { shape: [3], data: Float32Array.from({ length: 3 }, rand) }],
    // Long enough for the native fold's vector loop, with a tail it does value by value.
    ['b.weight', { shape: [37, 29], data: Float32Array.from({ length: 37 * 29 }, rand) }],
  ]);
}

/** npm test builds the native fold where this machine can (libs/aggregation/native/build.js); the JavaScript loops run everywhere. */
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { toolchain } = require('../../../../libs/aggregation/native/build.js') as { toolchain: () => { reason?: string } };
const engines = toolchain().reason === undefined ? (['native', 'js'] as const) : (['js'] as const);

describe.each(engines)('InPlaceFedAvg (%s)', (engine) => {
  const global = weights(1);
  const updates = [weights(2), weights(3), weights(4)];
  const examples = [40, 7, 13];

  it('runs the engine asked for (the native fold is built by npm test)', () => {
    expect(new InPlaceFedAvg(layoutOf(global), { engine }).engine).toBe(engine);
  });

  it('prefaulted (the sum allocated and its pages touched a slice at a time, the event loop running between), gives the same bits, -0 kept', async () => {
    const withZero = updates.map((u, k) => new Map([...u].map(([name, t]) => [name, { shape: t.shape, data: k === 0 ? t.data.map((v, i) => (i === 0 ? -0 : v)) : t.data }])));
    const plain = new InPlaceFedAvg(layoutOf(global), { engine });
    plain.add(encodeSafetensors(withZero[0]), examples[0]);
    const expected = plain.finish().buf;
    expect(Object.is(decodeSafetensors(expected).tensors.get('a.weight')!.data[0], -0)).toBe(true);

    const agg = new InPlaceFedAvg(layoutOf(global), { engine });
    let turns = 0;
    for (let k = 0; k < 3; k++) setImmediate(() => turns++);
    const prefaulted = agg.prefault(64); // parameters of 15, 3 and 1073 values: several slices
    expect(turns).toBe(0);
    await prefaulted;
    expect(turns).toBeGreaterThan(0);
    agg.add(encodeSafetensors(withZero[0]), examples[0]);
    expect(agg.finish().buf.equals(expected)).toBe(true);
    // With three updates too, and a prefault after the aggregation is disposed does nothing.
    const three = new InPlaceFedAvg(layoutOf(global), { engine });
    await three.prefault(64);
    updates.forEach((u, k) => three.add(encodeSafetensors(u), examples[k]));
    const reference = new InPlaceFedAvg(layoutOf(global), { engine });
    updates.forEach((u, k) => reference.add(encodeSafetensors(u), examples[k]));
    expect(three.finish().buf.equals(reference.finish().buf)).toBe(true);
    const disposed = new InPlaceFedAvg(layoutOf(global), { engine });
    disposed.dispose();
    await disposed.prefault(64);
    expect(() => disposed.finish()).toThrow('this aggregation is finished');
  });

  it('gives the bits of the strategies FedAvg, in a safetensors buffer that is the new weights', () => {
    const agg = new InPlaceFedAvg(layoutOf(global), { engine });
    updates.forEach((u, k) => agg.add(encodeSafetensors(u), examples[k]));
    expect(agg.updates).toBe(3);
    expect(agg.examples).toBe(60);
    const { buf, tensors } = agg.finish();

    const fedavg = createStrategy('fedavg', { min_fit_clients: 1, fraction_fit: 1 }, { seed: 1 });
    const fit = fedavg.beginFit(1, global as WeightMap);
    updates.forEach((u, k) => fit.add({ node: `n${k}`, parameters: u as WeightMap, numExamples: examples[k] }));
    const expected = fit.finish().parameters;
    for (const [name, t] of expected) {
      expect(Array.from(tensors.get(name)!.data)).toEqual(Array.from(t.data));
      expect(Array.from(decodeSafetensors(buf).tensors.get(name)!.data)).toEqual(Array.from(t.data));
    }
  });

  it('added a slice at a time (addAsync), gives the same bits and lets the event loop run; a bad update, wherever its fault, changes nothing', async () => {
    const reference = new InPlaceFedAvg(layoutOf(global), { engine });
    updates.forEach((u, k) => reference.add(encodeSafetensors(u), examples[k]));
    const expected = reference.finish().buf;
    // Neither 7 nor 100 divides b.weight's 1073 values: its last slice is shorter.
    for (const slice of [7, 100]) {
      const agg = new InPlaceFedAvg(layoutOf(global), { engine });
      for (const [k, u] of updates.entries()) {
        let loopRan = false;
        setImmediate(() => (loopRan = true));
        await agg.addAsync(encodeSafetensors(u), examples[k], undefined, slice);
        expect(loopRan).toBe(true);
        // After the first update, a bad one: its fault in b.weight's last slice, its sums left as they were.
        if (k === 0) {
          const late = weights(5);
          late.get('b.weight')!.data[1070] = Number.NaN;
          await expect(agg.addAsync(encodeSafetensors(late), 10, undefined, slice)).rejects.toThrow("parameter 'b.weight' holds a non-finite value at index 1070");
        }
      }
      expect(agg.updates).toBe(3);
      expect(agg.finish().buf.equals(expected)).toBe(true);
    }
  });

  it('takes addAsync calls one after another, in the order made; add and finish refuse meanwhile; a dispose stops the one under way', async () => {
    const reference = new InPlaceFedAvg(layoutOf(global), { engine });
    updates.forEach((u, k) => reference.add(encodeSafetensors(u), examples[k]));
    const agg = new InPlaceFedAvg(layoutOf(global), { engine });
    const adding = updates.map((u, k) => agg.addAsync(encodeSafetensors(u), examples[k], undefined, 16));
    expect(() => agg.add(encodeSafetensors(updates[0]), 1)).toThrow('an update is still being added');
    expect(() => agg.finish()).toThrow('an update is still being added');
    await Promise.all(adding);
    expect(agg.finish().buf.equals(reference.finish().buf)).toBe(true);

    const abandoned = new InPlaceFedAvg(layoutOf(global), { engine });
    const stopped = abandoned.addAsync(encodeSafetensors(updates[0]), 1, undefined, 16);
    setImmediate(() => abandoned.dispose());
    await expect(stopped).rejects.toThrow('this aggregation is finished');
  });

  it('rejects a bad update without changing the sum', () => {
    const agg = new InPlaceFedAvg(layoutOf(global), { engine });
    agg.add(encodeSafetensors(updates[0]), 1); // weight 1: the average is the update, bit for bit
    const bad = weights(5);
    bad.get('a.weight')!.data[7] = NaN;
    expect(() => agg.add(encodeSafetensors(bad), 10)).toThrow(UpdateRejectedError);
    const late = weights(5);
    late.get('b.weight')!.data[1000] = -Infinity;
    expect(() => agg.add(encodeSafetensors(late), 10)).toThrow("parameter 'b.weight' holds a non-finite value at index 1000");
    const huge = weights(6);
    huge.get('a.bias')!.data[2] = 3e38;
    expect(() => agg.add(encodeSafetensors(huge), 10)).toThrow(/beyond 3.4e38/);
    expect(() => agg.add(encodeSafetensors(new Map([...updates[1]].slice(0, 1))), 10)).toThrow(/missing parameter 'a.bias'/);
    expect(() => agg.add(encodeSafetensors(updates[1]), 0)).toThrow(/positive integer/);
    expect(() => agg.add(encodeSafetensors(updates[1]), 11, 10)).toThrow(/beyond the 10/);
    const wrong = new Map(updates[1]);
    wrong.set('a.bias', { shape: [1, 3], data: new Float32Array(3) });
    expect(() => agg.add(encodeSafetensors(wrong), 10)).toThrow(/shape/);
    expect(agg.updates).toBe(1);
    const { tensors } = agg.finish();
    for (const [name, t] of updates[0]) expect(Array.from(tensors.get(name)!.data)).toEqual(Array.from(t.data));
  });

  it('with a norm bound, refuses an update as the strategies do, measured against the global weights, and folds the others', () => {
    // Each update is the global weights moved by `step` in every value: the norm of the change is |step| sqrt(P).
    const moved = (step: number): NamedTensors => new Map([...global].map(([name, t]) => [name, { shape: t.shape, data: t.data.map((v) => v + step) }]));
    const values = [...global.values()].reduce((n, t) => n + t.data.length, 0);
    const maxL2Norm = 0.02 * Math.sqrt(values);
    const agg = new InPlaceFedAvg(layoutOf(global), { engine, bound: { maxL2Norm, reference: global } });
    const fedavg = createStrategy('fedavg', { min_fit_clients: 1, fraction_fit: 1 }, { seed: 1, maxUpdateNorm: maxL2Norm });
    const fit = fedavg.beginFit(1, global as WeightMap);
    const tooFar = moved(0.03);
    let refused = '';
    try {
      fit.add({ node: 'far', parameters: tooFar as WeightMap, numExamples: 5 });
    } catch (err) {
      refused = (err as Error).message;
    }
    expect(refused).toMatch(/^L2 norm of the update \(difference to the global weights\) is [\d.]+, beyond the bound/);
    expect(() => agg.add(encodeSafetensors(tooFar), 5)).toThrow(refused);
    for (const [k, step] of [0.01, -0.015].entries()) {
      agg.add(encodeSafetensors(moved(step)), 5 + k);
      fit.add({ node: `n${k}`, parameters: moved(step) as WeightMap, numExamples: 5 + k });
    }
    expect(agg.updates).toBe(2);
    const { tensors } = agg.finish();
    for (const [name, t] of fit.finish().parameters) expect(Array.from(tensors.get(name)!.data)).toEqual(Array.from(t.data));
  });

  it('has nothing to finish without an update', () => {
    expect(() => new InPlaceFedAvg(layoutOf(global), { engine }).finish()).toThrow(/no update/);
  });
});
