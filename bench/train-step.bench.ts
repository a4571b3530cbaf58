import * as ort from 'onnxruntime-node';
import {
  buildClassifierPackage,
  buildTrainStep,
  buildTrainStepGraph,
  ClassifierManifest,
  floatTensor,
  NamedTensors,
  OnnxGraphBuilder,
  referenceTrainStep,
} from '@fl/models';
import { seededRandom } from '@fl/datasets';
import { writeResult } from './support/results';
import { median } from './support/stats';

/**
 * One SGD train step of a 784-256-10 MLP at batch 64 (softmax cross-entropy), three ways, in
 * the same run on the same weights and batch:
 *  - the train-step graph the gradient pass builds from an exported inference graph (`models import`);
 *  - the hand-derived train-step graph of the built-in classifier packages;
 *  - the plain TypeScript reference (float64 loops), the baseline.
 * Then both graphs' FedProx variants (inputs mu and `<param>.global`), which FedProx tasks run
 * instead, and the gradient pass's with mu = 0: what every task would pay if the term were always
 * in the one graph. Graphs run in onnxruntime-node on `threads` intra-op threads, their runs
 * interleaved in blocks so that a busy machine weighs on all alike.
 */
export interface TrainStepBenchOptions {
  threads: number;
  iterations: number;
}

const F = 784;
const H = 256;
const C = 10;
const BATCH = 64;

/** The MLP as an exporter writes it: weights as initializers, Gemm with transB, Relu. */
function exportedMlp(m: ClassifierManifest, weights: NamedTensors): Buffer {
  const g = new OnnxGraphBuilder('mlp_784_256_10', { opsetVersion: 13 });
  g.input('features', 'float', ['batch', F]);
  for (const p of m.parameters) g.initializer(p.name, floatTensor(p.shape, weights.get(p.name)!.data));
  let h = g.op('Gemm', ['features', 'layers.0.weight', 'layers.0.bias'], { transB: 1 });
  h = g.op('Relu', [h]);
  h = g.op('Gemm', [h, 'layers.1.weight', 'layers.1.bias'], { transB: 1 });
  g.node('Identity', [h], ['logits']);
  g.output('logits', 'float', ['batch', C]);
  return g.toBuffer();
}

/** Each step `iterations` times, in ten interleaved blocks, after a warm-up of each. */
async function timeInterleaved(iterations: number, steps: (() => Promise<void>)[]): Promise<number[][]> {
  for (const step of steps) for (let i = 0; i < Math.min(20, iterations); i++) await step();
  const times = steps.map(() => [] as number[]);
  const block = Math.max(1, Math.round(iterations / 10));
  for (let done = 0; done < iterations; done += block) {
    for (const [k, step] of steps.entries()) {
      for (let i = 0; i < Math.min(block, iterations - done); i++) {
        const t0 = performance.now();
        await step();
        times[k].push(performance.now() - t0);
      }
    }
  }
  return times;
}

async function timeRuns(iterations: number, step: () => Promise<void>): Promise<number[]> {
  for (let i = 0; i < Math.min(20, iterations); i++) await step(); // warm-up
  const times: number[] = [];
  for (let i = 0; i < iterations; i++) {
    const t0 = performance.now();
    await step();
    times.push(performance.now() - t0);
  }
  return times;
}

export async function trainStepBench(opts: TrainStepBenchOptions): Promise<void> {
  const features = Array.from({ length: F }, (_, i) => `px${i}`);
  const classes = Array.from({ length: C }, (_, i) => String(i));
  // No normalisation, so that the three ways compute the same function.
  const pkg = buildClassifierPackage({ name: 'bench', featureNames: features, classes, hidden: [H], normalization: { mean: Array(F).fill(0), std: Array(F).fill(1) }, seed: 1 });
  const m = pkg.manifest;
  const weights = pkg.initialWeights;
  const rand = seededRandom(7);
  const x = Float32Array.from({ length: BATCH * F }, () => rand());
  const y = new Float32Array(BATCH * C);
  for (let r = 0; r < BATCH; r++) y[r * C + Math.floor(rand() * C)] = 1;
  const lr = 0.05;
  const session = { intraOpNumThreads: opts.threads, interOpNumThreads: 1, graphOptimizationLevel: 'all' as const, executionMode: 'sequential' as const };

  const feedsFor = (names: { weight: (p: string) => string; x: string; y: string }) => {
    const feeds: Record<string, ort.Tensor> = { [names.x]: new ort.Tensor('float32', x, [BATCH, F]), [names.y]: new ort.Tensor('float32', y, [BATCH, C]) };
    for (const p of m.parameters) feeds[names.weight(p.name)] = new ort.Tensor('float32', weights.get(p.name)!.data, p.shape);
    return feeds;
  };

  // The gradient pass's graph, and the hand-derived graph of the built-in packages.
  const imported = buildTrainStep(exportedMlp(m, weights), { loss: 'softmax_cross_entropy', optimizer: 'sgd' });
  const autodiff = await ort.InferenceSession.create(imported.trainStepOnnx, session);
  const autodiffFeeds = feedsFor({ weight: (p) => p, x: 'x', y: 'y' });
  for (const h of imported.hyperParameters) autodiffFeeds[h.name] = new ort.Tensor('float32', Float32Array.from(h.name === 'lr' ? [lr] : h.default), h.shape);
  const handmade = await ort.InferenceSession.create(pkg.trainStepOnnx, session);
  const handFeeds = { ...feedsFor({ weight: (p) => p, x: 'x', y: 'y' }), lr: new ort.Tensor('float32', Float32Array.of(lr), []) };

  // Their FedProx variants; the global weights are the weights, as in a round's first step.
  const proximal = (feeds: Record<string, ort.Tensor>, mu: number) => {
    const out: Record<string, ort.Tensor> = { ...feeds, mu: new ort.Tensor('float32', Float32Array.of(mu), []) };
    for (const p of m.parameters) out[`${p.name}.global`] = new ort.Tensor('float32', weights.get(p.name)!.data, p.shape);
    return out;
  };
  const importedProx = buildTrainStep(exportedMlp(m, weights), { loss: 'softmax_cross_entropy', optimizer: 'sgd', fedProx: true });
  const autodiffProx = await ort.InferenceSession.create(importedProx.trainStepOnnx, session);
  const handProx = await ort.InferenceSession.create(buildTrainStepGraph(m, { fedProx: true }), session);

  const ways: [string, ort.InferenceSession, Record<string, ort.Tensor>][] = [
    ['gradient pass (models import)', autodiff, autodiffFeeds],
    ['hand-derived graph (built-in packages)', handmade, handFeeds],
    ['gradient pass, FedProx step', autodiffProx, proximal(autodiffFeeds, 0.01)],
    ['hand-derived graph, FedProx step', handProx, proximal(handFeeds, 0.01)],
    ['gradient pass, FedProx step at mu = 0', autodiffProx, proximal(autodiffFeeds, 0)],
  ];
  const graphTimes = await timeInterleaved(opts.iterations, ways.map(([, s, feeds]) => async () => void (await s.run(feeds))));

  // Same step, same numbers: the gradient pass's result against the reference.
  const ref = referenceTrainStep(m, weights, x, y, BATCH, lr);
  const out = await autodiff.run(autodiffFeeds);
  let maxDiff = 0;
  for (const p of m.parameters) {
    const a = out[`${p.name}.next`].data as Float32Array;
    const b = ref.params.get(p.name)!.data;
    for (let i = 0; i < a.length; i++) maxDiff = Math.max(maxDiff, Math.abs(a[i] - b[i]));
  }

  const refIterations = Math.max(5, Math.round(opts.iterations / 20));
  const refTimes = await timeRuns(refIterations, async () => void referenceTrainStep(m, weights, x, y, BATCH, lr));
  await Promise.all([autodiff.release(), handmade.release(), autodiffProx.release(), handProx.release()]);

  const rows = [
    ...ways.map(([way], i) => ({ way, medianMs: median(graphTimes[i]), runs: graphTimes[i].length })),
    { way: 'TypeScript reference (baseline)', medianMs: median(refTimes), runs: refTimes.length },
  ];
  const baseline = rows[rows.length - 1].medianMs;
  console.log(`one SGD train step, ${F}-${H}-${C} MLP, batch ${BATCH}, ${opts.threads} thread(s)`);
  console.log('way                                      median ms   runs   x faster than the reference');
  for (const r of rows) console.log(`${r.way.padEnd(40)} ${r.medianMs.toFixed(3).padStart(9)} ${String(r.runs).padStart(6)}   ${(baseline / r.medianMs).toFixed(1)}`);
  console.log(`largest difference of the gradient pass's updated weights from the reference: ${maxDiff.toExponential(2)}`);
  const file = writeResult('train-step', { model: `${F}-${H}-${C}`, batch: BATCH, threads: opts.threads, rows, maxAbsDiffFromReference: maxDiff });
  console.log(`written to ${file}`);
}
