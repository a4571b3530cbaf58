/**
 * Test support for the gradient pass: runs imported train-step graphs with
 * onnxruntime-node and compares their gradients with central finite
 * differences of the train-step loss (lr = 0, so weights stay put).
 */
import * as ort from 'onnxruntime-node';
import { seededRandom } from '@fl/datasets';
import { buildTrainStep, TrainableModel, TrainStepOptions } from '../autodiff';
import { NamedTensors } from '../safetensors';

export const SESSION_OPTIONS: ort.InferenceSession.SessionOptions = {
  intraOpNumThreads: 1,
  interOpNumThreads: 1,
  graphOptimizationLevel: 'all',
};

/** Uniform noise in [lo, hi), seeded. */
export function uniform(count: number, seed: number, lo = -1, hi = 1): Float32Array {
  const rand = seededRandom(seed);
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = lo + (hi - lo) * rand();
  return out;
}

export const count = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

export function tensor(data: Float32Array, shape: number[]): ort.Tensor {
  return new ort.Tensor('float32', data, shape);
}

export class TrainStepSession {
  private constructor(
    readonly model: TrainableModel,
    readonly session: ort.InferenceSession,
  ) {}

  static async create(onnx: Uint8Array, options: TrainStepOptions): Promise<TrainStepSession> {
    const model = buildTrainStep(onnx, options);
    return new TrainStepSession(model, await ort.InferenceSession.create(model.trainStepOnnx, SESSION_OPTIONS));
  }

  /** Feeds: weights, state (default the model's initial state), x, y and hyper-parameters (defaults unless given). */
  async run(
    weights: NamedTensors,
    x: ort.Tensor,
    y: ort.Tensor,
    hyper: Record<string, number | Float32Array> = {},
    state: NamedTensors = this.model.initialState,
    extra: Record<string, ort.Tensor> = {},
  ): Promise<ort.InferenceSession.OnnxValueMapType> {
    const feeds: Record<string, ort.Tensor> = { x, y, ...extra };
    for (const [name, t] of [...weights, ...state]) feeds[name] = tensor(t.data, t.shape);
    for (const h of this.model.hyperParameters) {
      const v = hyper[h.name];
      feeds[h.name] = tensor(v === undefined ? h.default : typeof v === 'number' ? Float32Array.of(v) : v, h.shape);
    }
    return this.session.run(feeds);
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

export interface GradientComparison {
  /** Largest |analytic - numeric| / (atol + rtol·|numeric|) over all weights; <= 1 passes. */
  worst: number;
  where: string;
  /** Largest |numeric| seen, so tests can assert gradients are not all zero. */
  largest: number;
}

/**
 * Compares `<weight>.grad` of the train step with central differences of its
 * loss. Loss values are float32, so eps is large enough for their rounding
 * to stay well below the tolerance.
 */
export async function compareWithFiniteDifferences(
  onnx: Uint8Array,
  options: Omit<TrainStepOptions, 'exposeGradients' | 'optimizer'>,
  x: ort.Tensor,
  y: ort.Tensor,
  tolerance: { eps?: number; atol?: number; rtol?: number } = {},
): Promise<GradientComparison> {
  const eps = tolerance.eps ?? 3e-3;
  const atol = tolerance.atol ?? 2e-3;
  const rtol = tolerance.rtol ?? 1e-2;
  const s = await TrainStepSession.create(onnx, { ...options, optimizer: 'sgd', exposeGradients: true });
  try {
    const weights: NamedTensors = new Map([...s.model.initialWeights].map(([k, t]) => [k, { shape: t.shape, data: Float32Array.from(t.data) }]));
    const base = await s.run(weights, x, y, { lr: 0 });
    let worst = 0;
    let where = '';
    let largest = 0;
    for (const [name, t] of weights) {
      const analytic = base[`${name}.grad`].data as Float32Array;
      for (let i = 0; i < t.data.length; i++) {
        const saved = t.data[i];
        t.data[i] = saved + eps;
        const up = ((await s.run(weights, x, y, { lr: 0 })).loss.data as Float32Array)[0];
        t.data[i] = saved - eps;
        const down = ((await s.run(weights, x, y, { lr: 0 })).loss.data as Float32Array)[0];
        t.data[i] = saved;
        const numeric = (up - down) / (2 * eps);
        largest = Math.max(largest, Math.abs(numeric));
        const err = Math.abs(analytic[i] - numeric) / (atol + rtol * Math.abs(numeric));
        if (err > worst) {
          worst = err;
          where = `${name}[${i}]: analytic ${analytic[i]}, numeric ${numeric}`;
        }
      }
    }
    return { worst, where, largest };
  } finally {
    await s.release();
  }
}
