import { ModelManifest, ModelRunner, NamedTensors } from '@fl/models';
import { HostileRunner, parseHostile, ZeroComputeRunner } from './model-runners';

const manifest = { classes: ['a', 'b', 'c'] } as unknown as ModelManifest;
const data = { x: new Float32Array(8), labels: new Int32Array(2), n: 2, features: 4 };
const cfg = { epochs: 3, batchSize: 8, learningRate: 0.1, seed: 1 };
const tensors = (values: number[]): NamedTensors => new Map([['w', { shape: [values.length], data: Float32Array.from(values) }]]);

/** Trains by adding 1 to every weight. */
const plusOne: ModelRunner = {
  manifest,
  train: async (w) => ({ weights: tensors(Array.from(w.get('w')!.data, (v) => v + 1)), meanLoss: 0.5, steps: 1, examples: 2 }),
  evaluate: async () => ({ loss: 0.25, accuracy: 0.75, examples: 2 }),
  predict: async () => new Float32Array(6),
  release: async () => undefined,
};

describe('ZeroComputeRunner', () => {
  it('returns the global weights as its update and evaluates to 0 over the held-out rows', async () => {
    const runner = new ZeroComputeRunner(manifest);
    const global = tensors([1, 2, 3]);
    const out = await runner.train(global, data, cfg);
    expect(out.weights).toBe(global);
    expect(out).toMatchObject({ meanLoss: 0, steps: 0, examples: 6 });
    expect(await runner.evaluate(global, data)).toEqual({ loss: 0, accuracy: 0, examples: 2 });
  });

  it('stops before training when the task was cancelled', async () => {
    const controller = new AbortController();
    controller.abort();
    await expect(new ZeroComputeRunner(manifest).train(tensors([1]), data, { ...cfg, signal: controller.signal })).rejects.toThrow(/cancelled after 0 batch/);
  });
});

describe('HostileRunner', () => {
  const global = tensors([1, -2, 3]);

  it('sign-flip sends global - update', async () => {
    const out = await new HostileRunner(plusOne, { kind: 'sign-flip' }, 0).train(global, data, cfg);
    expect(Array.from(out.weights.get('w')!.data)).toEqual([0, -3, 2]);
    expect(out.meanLoss).toBe(0.5);
    expect(Array.from(global.get('w')!.data)).toEqual([1, -2, 3]);
  });

  it('scale:f sends global + f * update', async () => {
    const out = await new HostileRunner(plusOne, { kind: 'scale', factor: 10 }, 0).train(global, data, cfg);
    expect(Array.from(out.weights.get('w')!.data)).toEqual([11, 8, 13]);
  });

  it('noise:s adds seeded Gaussian noise to the trained weights; evaluation stays honest', async () => {
    const a = await new HostileRunner(plusOne, { kind: 'noise', std: 0.5 }, 7).train(global, data, cfg);
    const b = await new HostileRunner(plusOne, { kind: 'noise', std: 0.5 }, 7).train(global, data, cfg);
    const noisy = Array.from(a.weights.get('w')!.data);
    expect(noisy).toEqual(Array.from(b.weights.get('w')!.data));
    expect(noisy).not.toEqual([2, -1, 4]);
    noisy.forEach((v, i) => expect(Math.abs(v - [2, -1, 4][i])).toBeLessThan(3));
    expect(await new HostileRunner(plusOne, { kind: 'noise', std: 0.5 }, 7).evaluate(global, data)).toEqual({ loss: 0.25, accuracy: 0.75, examples: 2 });
  });
});

describe('parseHostile', () => {
  it('reads <node>:<mode> pairs', () => {
    expect(parseHostile('sim-3:sign-flip,sim-7:scale:-4,sim-9:noise:0.1')).toEqual(
      new Map([
        ['sim-3', { kind: 'sign-flip' }],
        ['sim-7', { kind: 'scale', factor: -4 }],
        ['sim-9', { kind: 'noise', std: 0.1 }],
      ]),
    );
    expect(parseHostile(undefined).size).toBe(0);
  });

  it.each(['sim-1:flip', 'sim-1:scale', 'sim-1:noise:0', 'sim-1:sign-flip:2', 'sim-1:sign-flip,sim-1:scale:2'])('refuses %s', (text) => {
    expect(() => parseHostile(text)).toThrow(/SIM_HOSTILE/);
  });
});
