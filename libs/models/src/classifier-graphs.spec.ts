/** @jest-environment ./libs/models/test/ort-environment.js */
import * as ort from 'onnxruntime-node';
import { buildTrainStepGraph } from './classifier-graphs';
import { ClassifierManifest, ModelPackage } from './manifest';
import { logSoftmaxRows, ParamValues, proximalPenalty, ProximalTerm, referenceForward, referenceLossAndGradients, referenceTrainStep } from './reference';
import { NamedTensors } from './safetensors';
import { maxAbsDiff, randomBatch, smallPackage } from './test/fixtures';

const sessionOptions: ort.InferenceSession.SessionOptions = { intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'all' };

/** The package's train step, or with `fedProx` the FedProx step built from its manifest (run with a ProximalTerm). */
async function trainStepRunner(pkg: ModelPackage, fedProx = false) {
  const graph = fedProx ? buildTrainStepGraph(pkg.manifest as ClassifierManifest, { fedProx: true }) : pkg.trainStepOnnx;
  const session = await ort.InferenceSession.create(graph, sessionOptions);
  const run = async (params: ParamValues, x: Float32Array, y: Float32Array, n: number, lr: number, proximal?: ProximalTerm) => {
    const m = pkg.manifest;
    const feeds: Record<string, ort.Tensor> = {
      x: new ort.Tensor('float32', x, [n, m.inputs.features.length]),
      y: new ort.Tensor('float32', y, [n, m.classes.length]),
      lr: new ort.Tensor('float32', Float32Array.of(lr), []),
    };
    for (const p of m.parameters) feeds[p.name] = new ort.Tensor('float32', Float32Array.from(params.get(p.name)!.data), p.shape);
    if (proximal) {
      feeds.mu = new ort.Tensor('float32', Float32Array.of(proximal.mu), []);
      for (const p of m.parameters) feeds[`${p.name}.global`] = new ort.Tensor('float32', Float32Array.from(proximal.global.get(p.name)!.data), p.shape);
    }
    const out = await session.run(feeds);
    const next = new Map<string, Float32Array>(m.parameters.map((p) => [p.name, out[`${p.name}.next`].data as Float32Array]));
    return { next, loss: (out.loss.data as Float32Array)[0], lossDims: out.loss.dims };
  };
  return { session, run };
}

function toFloat64(params: NamedTensors): Map<string, { shape: number[]; data: Float64Array }> {
  return new Map([...params].map(([k, t]) => [k, { shape: t.shape, data: Float64Array.from(t.data) }]));
}

/** Weights with non-trivial biases so the test does not rely on zero initial biases. */
function perturbedWeights(pkg: ModelPackage, amplitude = 0.05, phase = 0): NamedTensors {
  const w: NamedTensors = new Map();
  let k = 0;
  for (const [name, t] of pkg.initialWeights) {
    w.set(name, { shape: t.shape, data: t.data.map((v) => v + amplitude * Math.sin(++k + phase)) });
  }
  return w;
}

describe.each([[[]], [[8]], [[6, 5]]])('classifier graphs, hidden %j', (hidden: number[]) => {
  const pkg = smallPackage(hidden);
  const manifest: ClassifierManifest = pkg.manifest;
  const weights = perturbedWeights(pkg);
  // FedProx: global weights some way off the local ones, so the proximal pull is not small.
  const proximal: ProximalTerm = { mu: 0.7, global: perturbedWeights(pkg, 0.3, 1.5) };
  let runner: Awaited<ReturnType<typeof trainStepRunner>>;
  let fedProx: Awaited<ReturnType<typeof trainStepRunner>>;

  beforeAll(async () => {
    runner = await trainStepRunner(pkg);
    fedProx = await trainStepRunner(pkg, true);
  });
  afterAll(async () => {
    await runner.session.release();
    await fedProx.session.release();
  });

  it('one SGD step matches the TypeScript reference to 1e-5', async () => {
    const { x, y, n } = randomBatch(pkg, 13, 42);
    const lr = 0.3;
    const graph = await runner.run(weights, x, y, n, lr);
    const ref = referenceTrainStep(manifest, weights, x, y, n, lr);
    expect(graph.lossDims).toEqual([]);
    expect(Math.abs(graph.loss - ref.loss)).toBeLessThanOrEqual(1e-5);
    for (const p of manifest.parameters) {
      expect(maxAbsDiff(graph.next.get(p.name)!, ref.params.get(p.name)!.data)).toBeLessThanOrEqual(1e-5);
      // the step actually moved the parameter
      expect(maxAbsDiff(graph.next.get(p.name)!, weights.get(p.name)!.data)).toBeGreaterThan(1e-4);
    }
  });

  it('handles different batch sizes with the same graph (N is dynamic)', async () => {
    for (const n of [1, 2, 64]) {
      const batch = randomBatch(pkg, n, n);
      const graph = await runner.run(weights, batch.x, batch.y, n, 0.1);
      const ref = referenceTrainStep(manifest, weights, batch.x, batch.y, n, 0.1);
      expect(Math.abs(graph.loss - ref.loss)).toBeLessThanOrEqual(1e-5);
    }
  });

  it('reference gradients match central finite differences of the reference loss', () => {
    const { x, y, n } = randomBatch(pkg, 9, 5);
    const params = toFloat64(weights);
    const { gradients } = referenceLossAndGradients(manifest, params, x, y, n);
    const eps = 1e-6;
    for (const p of manifest.parameters) {
      const data = params.get(p.name)!.data;
      const g = gradients.get(p.name)!;
      for (let i = 0; i < data.length; i++) {
        const orig = data[i];
        data[i] = orig + eps;
        const plus = referenceLossAndGradients(manifest, params, x, y, n).loss;
        data[i] = orig - eps;
        const minus = referenceLossAndGradients(manifest, params, x, y, n).loss;
        data[i] = orig;
        const fd = (plus - minus) / (2 * eps);
        expect(Math.abs(fd - g[i])).toBeLessThanOrEqual(1e-7 + 1e-5 * Math.abs(fd));
      }
    }
  });

  it('graph gradients, (w - w.next) / lr, match finite differences of the graph loss', async () => {
    const { x, y, n } = randomBatch(pkg, 9, 6);
    const lr = 1;
    const base = await runner.run(weights, x, y, n, lr);
    const eps = 2e-3;
    let errNorm = 0;
    let gradNorm = 0;
    let maxErr = 0;
    for (const p of manifest.parameters) {
      const w = weights.get(p.name)!.data;
      const next = base.next.get(p.name)!;
      const probe = new Map([...weights].map(([k, t]) => [k, { shape: t.shape, data: Float32Array.from(t.data) }]));
      const data = probe.get(p.name)!.data;
      for (let i = 0; i < w.length; i++) {
        const graphGrad = (w[i] - next[i]) / lr;
        data[i] = w[i] + eps;
        const plus = (await runner.run(probe, x, y, n, lr)).loss;
        data[i] = w[i] - eps;
        const minus = (await runner.run(probe, x, y, n, lr)).loss;
        data[i] = w[i];
        // divide by the perturbation actually applied after float32 rounding
        const fd = (plus - minus) / (Math.fround(w[i] + eps) - Math.fround(w[i] - eps));
        errNorm += (fd - graphGrad) ** 2;
        gradNorm += graphGrad ** 2;
        maxErr = Math.max(maxErr, Math.abs(fd - graphGrad) - 1e-3 * Math.abs(fd));
      }
    }
    // The graph loss is float32, so the finite differences carry ~1e-7/eps of noise.
    expect(Math.sqrt(errNorm / gradNorm)).toBeLessThan(1e-3);
    expect(maxErr).toBeLessThan(1e-4);
  });

  it('the FedProx step matches the TypeScript reference with mu > 0 to 1e-5, and the plain step with mu = 0', async () => {
    const { x, y, n } = randomBatch(pkg, 13, 42);
    const lr = 0.3;
    const graph = await fedProx.run(weights, x, y, n, lr, proximal);
    const ref = referenceTrainStep(manifest, weights, x, y, n, lr, proximal);
    const plain = referenceTrainStep(manifest, weights, x, y, n, lr);
    // the loss output stays the cross-entropy
    expect(Math.abs(graph.loss - plain.loss)).toBeLessThanOrEqual(1e-5);
    for (const p of manifest.parameters) {
      expect(maxAbsDiff(graph.next.get(p.name)!, ref.params.get(p.name)!.data)).toBeLessThanOrEqual(1e-5);
      // the proximal term moved the step: lr * mu * |w - w_global| is about 0.06 here
      expect(maxAbsDiff(graph.next.get(p.name)!, plain.params.get(p.name)!.data)).toBeGreaterThan(1e-2);
    }
    const off = await fedProx.run(weights, x, y, n, lr, { ...proximal, mu: 0 });
    const base = await runner.run(weights, x, y, n, lr);
    for (const p of manifest.parameters) expect(maxAbsDiff(off.next.get(p.name)!, base.next.get(p.name)!)).toBeLessThanOrEqual(1e-6);
  });

  it('reference gradients with the proximal term match central finite differences of the FedProx objective', () => {
    const { x, y, n } = randomBatch(pkg, 9, 5);
    const params = toFloat64(weights);
    const { gradients, loss, objective } = referenceLossAndGradients(manifest, params, x, y, n, proximal);
    expect(objective - loss).toBeCloseTo(proximalPenalty(manifest, params, proximal), 12);
    expect(objective - loss).toBeGreaterThan(0);
    const eps = 1e-6;
    for (const p of manifest.parameters) {
      const data = params.get(p.name)!.data;
      const g = gradients.get(p.name)!;
      for (let i = 0; i < data.length; i++) {
        const orig = data[i];
        data[i] = orig + eps;
        const plus = referenceLossAndGradients(manifest, params, x, y, n, proximal).objective;
        data[i] = orig - eps;
        const minus = referenceLossAndGradients(manifest, params, x, y, n, proximal).objective;
        data[i] = orig;
        const fd = (plus - minus) / (2 * eps);
        expect(Math.abs(fd - g[i])).toBeLessThanOrEqual(1e-7 + 1e-5 * Math.abs(fd));
      }
    }
  });

  it('FedProx graph gradients, (w - w.next) / lr, match finite differences of the graph loss plus the proximal penalty', async () => {
    const { x, y, n } = randomBatch(pkg, 9, 6);
    const lr = 1;
    const objective = async (probe: ParamValues) => (await fedProx.run(probe, x, y, n, lr, proximal)).loss + proximalPenalty(manifest, probe, proximal);
    const base = await fedProx.run(weights, x, y, n, lr, proximal);
    const eps = 2e-3;
    let errNorm = 0;
    let gradNorm = 0;
    for (const p of manifest.parameters) {
      const w = weights.get(p.name)!.data;
      const next = base.next.get(p.name)!;
      const probe = new Map([...weights].map(([k, t]) => [k, { shape: t.shape, data: Float32Array.from(t.data) }]));
      const data = probe.get(p.name)!.data;
      for (let i = 0; i < w.length; i++) {
        const graphGrad = (w[i] - next[i]) / lr;
        data[i] = w[i] + eps;
        const plus = await objective(probe);
        data[i] = w[i] - eps;
        const minus = await objective(probe);
        data[i] = w[i];
        const fd = (plus - minus) / (Math.fround(w[i] + eps) - Math.fround(w[i] - eps));
        errNorm += (fd - graphGrad) ** 2;
        gradNorm += graphGrad ** 2;
      }
    }
    expect(Math.sqrt(errNorm / gradNorm)).toBeLessThan(1e-3);
  });

  it('inference probabilities are softmax(logits) and rows sum to 1', async () => {
    const session = await ort.InferenceSession.create(pkg.inferenceOnnx, sessionOptions);
    try {
      const { x, n } = randomBatch(pkg, 11, 8);
      const C = manifest.classes.length;
      const feeds: Record<string, ort.Tensor> = { x: new ort.Tensor('float32', x, [n, manifest.inputs.features.length]) };
      for (const p of manifest.parameters) feeds[p.name] = new ort.Tensor('float32', weights.get(p.name)!.data, p.shape);
      const out = await session.run(feeds);
      const logits = out.logits.data as Float32Array;
      const probs = out.probabilities.data as Float32Array;
      expect(out.probabilities.dims).toEqual([n, C]);
      expect(maxAbsDiff(logits, referenceForward(manifest, weights, x, n).logits)).toBeLessThan(1e-5);
      const expected = logSoftmaxRows(logits, n, C).map(Math.exp);
      expect(maxAbsDiff(probs, expected)).toBeLessThan(1e-6);
      for (let r = 0; r < n; r++) {
        let s = 0;
        for (let c = 0; c < C; c++) s += probs[r * C + c];
        expect(Math.abs(s - 1)).toBeLessThan(1e-6);
      }
    } finally {
      await session.release();
    }
  });
});
