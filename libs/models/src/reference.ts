/**
 * Plain-TypeScript specification of the classifier graphs (classifier-graphs.ts):
 * the same forward pass, mean softmax cross-entropy, backward pass and SGD
 * step (with FedProx's proximal term when given), in float64. Too slow for training; tests compare the graphs to it.
 */
import { layerSizes, ClassifierManifest } from './manifest';
import { NamedTensors } from './safetensors';

/** Parameters with any numeric storage (float64 for finite differences). */
export type ParamValues = ReadonlyMap<string, { shape: number[]; data: ArrayLike<number> }>;

export interface ReferenceForward {
  /** [N, C] */
  logits: Float64Array;
  /** Input of every layer, h_0 = normalised x. */
  layerInputs: Float64Array[];
  /** Pre-activation output of every layer. */
  preActivations: Float64Array[];
}

function param(params: ParamValues, name: string): ArrayLike<number> {
  const p = params.get(name);
  if (!p) throw new Error(`reference: missing parameter "${name}"`);
  return p.data;
}

export function referenceForward(manifest: ClassifierManifest, params: ParamValues, x: ArrayLike<number>, n: number): ReferenceForward {
  const sizes = layerSizes(manifest);
  const { mean, std } = manifest.normalization;
  const features = sizes[0];
  let h = new Float64Array(n * features);
  for (let r = 0; r < n; r++) {
    for (let j = 0; j < features; j++) h[r * features + j] = (x[r * features + j] - mean[j]) / std[j];
  }
  const layerInputs: Float64Array[] = [];
  const preActivations: Float64Array[] = [];
  for (let i = 0; i + 1 < sizes.length; i++) {
    const [fanIn, fanOut] = [sizes[i], sizes[i + 1]];
    const w = param(params, `layers.${i}.weight`);
    const b = param(params, `layers.${i}.bias`);
    const z = new Float64Array(n * fanOut);
    for (let r = 0; r < n; r++) {
      for (let o = 0; o < fanOut; o++) {
        let s = b[o];
        for (let k = 0; k < fanIn; k++) s += h[r * fanIn + k] * w[o * fanIn + k];
        z[r * fanOut + o] = s;
      }
    }
    layerInputs.push(h);
    preActivations.push(z);
    h = i + 2 < sizes.length ? z.map((v) => (v > 0 ? v : 0)) : z;
  }
  return { logits: preActivations[preActivations.length - 1], layerInputs, preActivations };
}

/** Row-wise log-softmax with the max-subtraction trick. */
export function logSoftmaxRows(logits: ArrayLike<number>, n: number, classes: number): Float64Array {
  const out = new Float64Array(n * classes);
  for (let r = 0; r < n; r++) {
    let max = -Infinity;
    for (let c = 0; c < classes; c++) max = Math.max(max, logits[r * classes + c]);
    let sum = 0;
    for (let c = 0; c < classes; c++) sum += Math.exp(logits[r * classes + c] - max);
    const lse = max + Math.log(sum);
    for (let c = 0; c < classes; c++) out[r * classes + c] = logits[r * classes + c] - lse;
  }
  return out;
}

/** FedProx's proximal term (mu / 2) ||w - w_global||^2 added to the local objective. */
export interface ProximalTerm {
  mu: number;
  /** The round's global weights. */
  global: ParamValues;
}

/** (mu / 2) ||w - w_global||^2 over every parameter. */
export function proximalPenalty(manifest: ClassifierManifest, params: ParamValues, proximal: ProximalTerm): number {
  let sq = 0;
  for (const p of manifest.parameters) {
    const w = param(params, p.name);
    const g = param(proximal.global, p.name);
    for (let i = 0; i < w.length; i++) sq += (w[i] - g[i]) ** 2;
  }
  return (proximal.mu / 2) * sq;
}

/**
 * Mean softmax cross-entropy over the batch and the gradient of the local
 * objective for every parameter: the cross-entropy's, plus mu (w - w_global)
 * with a proximal term. `loss` is the cross-entropy alone (what the train
 * step reports), `objective` adds the proximal penalty.
 */
export function referenceLossAndGradients(
  manifest: ClassifierManifest,
  params: ParamValues,
  x: ArrayLike<number>,
  y: ArrayLike<number>,
  n: number,
  proximal?: ProximalTerm,
): { loss: number; objective: number; gradients: Map<string, Float64Array> } {
  const sizes = layerSizes(manifest);
  const classes = sizes[sizes.length - 1];
  const fwd = referenceForward(manifest, params, x, n);
  const logProbs = logSoftmaxRows(fwd.logits, n, classes);
  let loss = 0;
  // dL/dlogits = (softmax - y) / N
  let delta = new Float64Array(n * classes);
  for (let i = 0; i < n * classes; i++) {
    loss -= y[i] * logProbs[i];
    delta[i] = (Math.exp(logProbs[i]) - y[i]) / n;
  }
  loss /= n;

  const gradients = new Map<string, Float64Array>();
  for (let i = sizes.length - 2; i >= 0; i--) {
    const [fanIn, fanOut] = [sizes[i], sizes[i + 1]];
    const h = fwd.layerInputs[i];
    const dW = new Float64Array(fanOut * fanIn);
    const db = new Float64Array(fanOut);
    for (let r = 0; r < n; r++) {
      for (let o = 0; o < fanOut; o++) {
        const d = delta[r * fanOut + o];
        db[o] += d;
        for (let k = 0; k < fanIn; k++) dW[o * fanIn + k] += d * h[r * fanIn + k];
      }
    }
    gradients.set(`layers.${i}.weight`, dW);
    gradients.set(`layers.${i}.bias`, db);
    if (i > 0) {
      const w = param(params, `layers.${i}.weight`);
      const z = fwd.preActivations[i - 1];
      const next = new Float64Array(n * fanIn);
      for (let r = 0; r < n; r++) {
        for (let k = 0; k < fanIn; k++) {
          if (!(z[r * fanIn + k] > 0)) continue; // ReLU derivative is 0 for z <= 0
          let s = 0;
          for (let o = 0; o < fanOut; o++) s += delta[r * fanOut + o] * w[o * fanIn + k];
          next[r * fanIn + k] = s;
        }
      }
      delta = next;
    }
  }
  if (!proximal) return { loss, objective: loss, gradients };
  for (const p of manifest.parameters) {
    const w = param(params, p.name);
    const wg = param(proximal.global, p.name);
    const g = gradients.get(p.name)!;
    for (let i = 0; i < g.length; i++) g[i] += proximal.mu * (w[i] - wg[i]);
  }
  return { loss, objective: loss + proximalPenalty(manifest, params, proximal), gradients };
}

/** One plain SGD step: p.next = p - lr * dObjective/dp, returned as float32; `loss` is the cross-entropy. */
export function referenceTrainStep(
  manifest: ClassifierManifest,
  params: ParamValues,
  x: ArrayLike<number>,
  y: ArrayLike<number>,
  n: number,
  lr: number,
  proximal?: ProximalTerm,
): { params: NamedTensors; loss: number } {
  const { loss, gradients } = referenceLossAndGradients(manifest, params, x, y, n, proximal);
  const next: NamedTensors = new Map();
  for (const p of manifest.parameters) {
    const w = param(params, p.name);
    const g = gradients.get(p.name)!;
    next.set(p.name, { shape: [...p.shape], data: Float32Array.from(g, (gi, i) => w[i] - lr * gi) });
  }
  return { params: next, loss };
}
