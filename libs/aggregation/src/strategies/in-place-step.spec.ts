import { DEFAULT_SAMPLING } from '../base-strategy';
import { SteppingStrategy } from '../linear-strategy';
import { runToEnd } from '../update-store';
import { ServerStateful } from '../server-state';
import { StateMap } from '../weight-arithmetic';
import { WeightMap } from '../weights';
import { FedAdagrad } from './fedadagrad.strategy';
import { FedAdam } from './fedadam.strategy';
import { FedAvg } from './fedavg.strategy';
import { FedAvgM } from './fedavgm.strategy';
import { FedProx } from './fedprox.strategy';
import { FedYogi } from './fedyogi.strategy';

type Stepping = SteppingStrategy & ServerStateful;

/** A deterministic, non-trivial layout: two parameters of odd sizes. */
function model(seed: number): WeightMap {
  let x = seed;
  const next = () => ((x = (x * 1103515245 + 12345) % 2 ** 31) / 2 ** 31 - 0.5) * 4;
  return new Map([
    ['a', { shape: [7, 3], data: Float32Array.from({ length: 21 }, next) }],
    ['b', { shape: [5], data: Float32Array.from({ length: 5 }, next) }],
  ]);
}

function copy(w: WeightMap): Map<string, Float32Array> {
  return new Map([...w].map(([name, t]) => [name, Float32Array.from(t.data)]));
}

const cases: [string, () => Stepping][] = [
  ['FedAvgM with momentum', () => new FedAvgM({ ...DEFAULT_SAMPLING, server_learning_rate: 0.7, server_momentum: 0.9 })],
  ['FedAvgM without momentum', () => new FedAvgM({ ...DEFAULT_SAMPLING, server_learning_rate: 1.3, server_momentum: 0 })],
  ['FedAdam', () => new FedAdam({ ...DEFAULT_SAMPLING, eta: 0.1, eta_l: 0.1, beta_1: 0.9, beta_2: 0.99, tau: 1e-3 })],
  ['FedYogi', () => new FedYogi({ ...DEFAULT_SAMPLING, eta: 0.05, eta_l: 0.1, beta_1: 0.8, beta_2: 0.95, tau: 1e-3 })],
  ['FedAdagrad', () => new FedAdagrad({ ...DEFAULT_SAMPLING, eta: 0.2, eta_l: 0.1, tau: 1e-2 })],
];

describe('in-place server steps (large models)', () => {
  it.each(cases)('%s: the same bits as serverStep over three rounds, the state handed over shared', async (_name, make) => {
    let wStep = model(1);
    let wInPlace = model(1);
    let savedStep: StateMap = new Map();
    let savedInPlace: StateMap = new Map();
    for (let round = 1; round <= 3; round++) {
      const average = model(10 + round);
      // As the coordinator runs a round: a new strategy from the last round's state.
      const a = make();
      if (savedStep.size) a.loadServerState(savedStep, wStep);
      wStep = a.serverStep(round, wStep, copy(average));
      savedStep = a.saveServerState();

      const b = make();
      if (savedInPlace.size) b.loadServerState(savedInPlace, wInPlace, { share: true });
      const sum = copy(average);
      await b.stepInPlace(round, wInPlace, sum, 4); // slices of 4 values: parameters of 21 and 5 values take several
      wInPlace = new Map([...wInPlace].map(([name, t]) => [name, { shape: t.shape, data: sum.get(name)! }]));
      savedInPlace = b.saveServerState({ share: true });

      for (const [name, t] of wStep) expect(Buffer.from(wInPlace.get(name)!.data.buffer)).toEqual(Buffer.from(t.data.buffer));
      expect([...savedInPlace.keys()]).toEqual([...savedStep.keys()]);
      for (const [key, v] of savedStep) expect(Buffer.from(savedInPlace.get(key)!.buffer)).toEqual(Buffer.from(v.buffer));
    }
  });

  it.each(cases)("%s: into arrays of its own from a float64 average (differential privacy's), the same bits as serverStep", (_name, make) => {
    const w = model(1);
    const average = new Map([...model(5)].map(([name, t]) => [name, Float64Array.from(t.data, (v) => v + 1e-9)]));
    const expected = make().serverStep(1, w, average);
    const next = new Map([...w].map(([name, t]) => [name, new Float32Array(t.data.length)]));
    runToEnd(make().stepInto(1, w, average, next, 4));
    for (const [name, t] of expected) expect(Buffer.from(next.get(name)!.buffer)).toEqual(Buffer.from(t.data.buffer));
  });

  it('FedAvg and FedProx step into arrays as serverStep does: the float64 average rounded to float32', () => {
    const w = model(1);
    const average = new Map([...model(5)].map(([name, t]) => [name, Float64Array.from(t.data, (v) => v + 1e-9)]));
    for (const s of [new FedAvg(DEFAULT_SAMPLING), new FedProx({ ...DEFAULT_SAMPLING, proximal_mu: 0.1 })]) {
      const next = new Map([...w].map(([name, t]) => [name, new Float32Array(t.data.length)]));
      runToEnd(s.stepInto(1, w, average, next, 4));
      for (const [name, t] of s.serverStep(1, w, average)) expect(Buffer.from(next.get(name)!.buffer)).toEqual(Buffer.from(t.data.buffer));
      expect(next.get('a')![0]).toBe(Math.fround(average.get('a')![0]));
    }
  });

  it('shares the state buffers only when asked: a copy by default', () => {
    const s = cases[2][1]();
    const w = model(1);
    s.serverStep(1, w, copy(model(2)));
    const copied = s.saveServerState();
    const shared = s.saveServerState({ share: true });
    s.serverStep(2, w, copy(model(3)));
    const after = s.saveServerState();
    for (const [key, v] of after) {
      expect(shared.get(key)).toEqual(v); // the strategy's own buffers, moved on by round 2
      expect(copied.get(key)).not.toEqual(v); // the copy kept round 1's values
    }
    const t = cases[2][1]();
    t.loadServerState(copied, w, { share: true });
    expect(t.saveServerState({ share: true }).get('m/a')).toBe(copied.get('m/a'));
    const u = cases[2][1]();
    u.loadServerState(copied, w);
    expect(u.saveServerState({ share: true }).get('m/a')).not.toBe(copied.get('m/a'));
  });

  it('lets the event loop run between slices, and not within a slice', async () => {
    const s = cases[2][1]();
    let turns = 0;
    const count = () => setImmediate(() => turns++);
    count();
    await s.stepInPlace(1, model(1), copy(model(2)), 100); // every parameter in one slice
    const oneSlice = turns;
    turns = 0;
    for (let k = 0; k < 10; k++) count();
    await s.stepInPlace(2, model(1), copy(model(3)), 4); // 6 + 2 slices: 6 waits
    expect(oneSlice).toBe(0);
    expect(turns).toBeGreaterThan(0);
  });

  it('FedAvg and FedProx have no step; the stateful linear strategies do', () => {
    expect(new FedAvg(DEFAULT_SAMPLING)).not.toBeInstanceOf(SteppingStrategy);
    expect(new FedProx({ ...DEFAULT_SAMPLING, proximal_mu: 0.1 })).not.toBeInstanceOf(SteppingStrategy);
    for (const [, make] of cases) expect(make()).toBeInstanceOf(SteppingStrategy);
  });
});
