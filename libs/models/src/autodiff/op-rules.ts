/**
 * Per-operator rules of the gradient pass: static shape inference, the
 * training-mode forward (where it differs from inference) and the backward
 * pass, all written with standard ONNX ops.
 */
import { attr, AttrValue, int64Tensor, NodeDef } from '../onnx';
import { BOOL_TYPE, FLOAT_TYPE, GraphEmitter, StaticDim, StaticShape } from './emitter';

/** Values a training-mode forward leaves for its backward (masks, indices, normalised inputs). */
export type Saved = Record<string, string>;

export interface BackwardArgs {
  e: GraphEmitter;
  node: NodeDef;
  /** Gradient of each output; undefined when the loss does not depend on it. */
  grads: (string | undefined)[];
  /** Whether the gradient of each input is wanted. */
  needs: boolean[];
  saved: Saved;
}

export interface TrainingOptions {
  dropoutSeed?: number;
}

export interface OpRule {
  /** Input slots gradients flow through; the other slots are shapes, ratios or statistics. */
  differentiable: number[];
  infer(e: GraphEmitter, node: NodeDef, inputs: StaticShape[]): StaticShape[];
  /** Checks attributes the backward pass cannot handle; throws naming the node. */
  check?(node: NodeDef, inputs: StaticShape[]): void;
  /** Training-mode forward; default: the node as is. */
  forward?(e: GraphEmitter, node: NodeDef, opts: TrainingOptions): Saved;
  backward?(a: BackwardArgs): (string | undefined)[];
}

export class UnsupportedModelError extends Error {}

function reject(node: NodeDef, msg: string): never {
  throw new UnsupportedModelError(`node "${node.name}" (${node.opType}): ${msg}`);
}

function attrOf(node: NodeDef, name: string): AttrValue | undefined {
  return node.attributes.find(([k]) => k === name)?.[1];
}

function intAttr(node: NodeDef, name: string, fallback: number): number {
  const a = attrOf(node, name);
  return a?.type === 'int' ? a.value : fallback;
}

function floatAttr(node: NodeDef, name: string, fallback: number): number {
  const a = attrOf(node, name);
  return a?.type === 'float' ? a.value : a?.type === 'int' ? a.value : fallback;
}

function intsAttr(node: NodeDef, name: string): number[] | undefined {
  const a = attrOf(node, name);
  return a?.type === 'ints' ? a.value : undefined;
}

function stringAttr(node: NodeDef, name: string, fallback: string): string {
  const a = attrOf(node, name);
  return a?.type === 'string' ? a.value : fallback;
}

const same = (_e: GraphEmitter, _n: NodeDef, s: StaticShape[]): StaticShape[] => [s[0]];

export function broadcastShapes(a: StaticShape, b: StaticShape): StaticShape {
  if (!a || !b) return undefined;
  const rank = Math.max(a.length, b.length);
  const out: StaticDim[] = [];
  for (let i = 0; i < rank; i++) {
    const ia = a.length - rank + i;
    const ib = b.length - rank + i;
    const x = ia >= 0 ? a[ia] : 1;
    const y = ib >= 0 ? b[ib] : 1;
    out.push(x === 1 ? y : y === 1 ? x : x === null ? y : x);
  }
  return out;
}

function matmulShape(a: StaticShape, b: StaticShape): StaticShape {
  if (!a || !b || a.length < 2 || b.length < 2) return undefined;
  const batch = broadcastShapes(a.slice(0, -2), b.slice(0, -2))!;
  return [...batch, a[a.length - 2], b[b.length - 1]];
}

const swapLast = (s: StaticShape): StaticShape => (s ? [...s.slice(0, -2), s[s.length - 1], s[s.length - 2]] : undefined);

function product(dims: StaticDim[]): StaticDim {
  return dims.reduce<StaticDim>((p, d) => (p === null || d === null ? null : p * d), 1);
}

/** The node's i-th input, or undefined when the optional input is omitted. */
const inputOr = (node: NodeDef, i: number): string | undefined => (node.inputs[i] ? node.inputs[i] : undefined);

/** The exact-shape tensor `g` reshaped like `x` (static target when known). */
function reshapeLike(e: GraphEmitter, g: string, x: string): string {
  const s = e.shape(x);
  const target = s && s.every((d) => d !== null) ? e.ints(s as number[]) : e.op('Shape', [x]);
  return e.op('Reshape', [g, target]);
}

const elementwise = (op: 'Add' | 'Sub' | 'Mul' | 'Div'): OpRule => ({
  differentiable: [0, 1],
  infer: (_e, _n, s) => [broadcastShapes(s[0], s[1])],
  backward: ({ e, node, grads, needs }) => {
    const [a, b] = node.inputs;
    const y = node.outputs[0];
    const g = grads[0]!;
    const ys = e.shape(y);
    let ga: string | undefined;
    let gb: string | undefined;
    switch (op) {
      case 'Add':
        if (needs[0]) ga = e.sumToShape(g, ys, a, b);
        if (needs[1]) gb = e.sumToShape(g, ys, b, a);
        break;
      case 'Sub':
        if (needs[0]) ga = e.sumToShape(g, ys, a, b);
        if (needs[1]) gb = e.sumToShape(e.op('Neg', [g]), ys, b, a);
        break;
      case 'Mul':
        if (needs[0]) ga = e.sumToShape(e.mul(g, b), ys, a, b);
        if (needs[1]) gb = e.sumToShape(e.mul(g, a), ys, b, a);
        break;
      case 'Div': {
        const gOverB = e.op('Div', [g, b]);
        if (needs[0]) ga = e.sumToShape(gOverB, ys, a, b);
        // d(a/b)/db = -a/b² = -(a/b)/b
        if (needs[1]) gb = e.sumToShape(e.op('Neg', [e.mul(gOverB, y)]), ys, b, a);
        break;
      }
    }
    return [ga, gb];
  },
});

const unary = (backward: (e: GraphEmitter, node: NodeDef, g: string) => string): OpRule => ({
  differentiable: [0],
  infer: same,
  backward: ({ e, node, grads }) => [backward(e, node, grads[0]!)],
});

function gemmRule(): OpRule {
  return {
    differentiable: [0, 1, 2],
    infer: (_e, node, [a, b]) => {
      const ta = intAttr(node, 'transA', 0);
      const tb = intAttr(node, 'transB', 0);
      if (!a || !b) return [undefined];
      return [[ta ? a[1] : a[0], tb ? b[0] : b[1]]];
    },
    check: (node, [a, b]) => {
      if ((a && a.length !== 2) || (b && b.length !== 2)) reject(node, 'Gemm needs 2-D A and B');
    },
    backward: ({ e, node, grads, needs }) => {
      const [a, b] = node.inputs;
      const c = inputOr(node, 2);
      const g = grads[0]!;
      const alpha = floatAttr(node, 'alpha', 1);
      const beta = floatAttr(node, 'beta', 1);
      const ta = intAttr(node, 'transA', 0);
      const tb = intAttr(node, 'transB', 0);
      const gemm = (x: string, y: string, transA: number, transB: number) => {
        const attrs: Record<string, number | AttrValue> = {};
        if (transA) attrs.transA = 1;
        if (transB) attrs.transB = 1;
        if (alpha !== 1) attrs.alpha = attr.float(alpha);
        return e.op('Gemm', [x, y], attrs);
      };
      // With A' = op(A), B' = op(B): dA' = g·B'ᵀ, dB' = A'ᵀ·g, transposed back when the op transposes.
      let ga: string | undefined;
      let gb: string | undefined;
      if (needs[0]) ga = ta ? gemm(b, g, tb, 1) : gemm(g, b, 0, tb ? 0 : 1);
      if (needs[1]) gb = tb ? gemm(g, a, 1, ta) : gemm(a, g, ta ? 0 : 1, 0);
      let gc: string | undefined;
      if (c && needs[2]) {
        const scaled = beta === 1 ? g : e.mul(g, e.scalar(beta));
        gc = e.sumToShape(scaled, e.shape(node.outputs[0]), c);
      }
      return [ga, gb, gc];
    },
  };
}

function matmulRule(): OpRule {
  return {
    differentiable: [0, 1],
    infer: (_e, _n, [a, b]) => [matmulShape(a, b)],
    check: (node, [a, b]) => {
      if (!a || !b) reject(node, 'MatMul needs inputs of known rank');
      if (a.length < 2 || b.length < 2) reject(node, 'MatMul with a 1-D operand is not supported; reshape it to 2-D');
    },
    backward: ({ e, node, grads, needs }) => {
      const [a, b] = node.inputs;
      const g = grads[0]!;
      const as = e.shape(a)!;
      const bs = e.shape(b)!;
      const gs = e.shape(node.outputs[0]);
      const transpose = (v: string, rank: number) => {
        const perm = [...Array(rank).keys()];
        [perm[rank - 2], perm[rank - 1]] = [perm[rank - 1], perm[rank - 2]];
        return e.op('Transpose', [v], { perm });
      };
      let ga: string | undefined;
      let gb: string | undefined;
      if (needs[0]) ga = e.sumToShape(e.op('MatMul', [g, transpose(b, bs.length)]), matmulShape(gs, swapLast(bs)), a);
      if (needs[1]) gb = e.sumToShape(e.op('MatMul', [transpose(a, as.length), g]), matmulShape(swapLast(as), gs), b);
      return [ga, gb];
    },
  };
}

function softmaxRule(log: boolean): OpRule {
  return {
    differentiable: [0],
    infer: same,
    backward: ({ e, node, grads }) => {
      const y = node.outputs[0];
      const g = grads[0]!;
      const axes = e.ints([intAttr(node, 'axis', -1)]);
      if (log) {
        // dx = g - softmax(x) · Σ g
        const sum = e.op('ReduceSum', [g, axes], { keepdims: 1 });
        return [e.op('Sub', [g, e.mul(e.op('Exp', [y]), sum)])];
      }
      // dx = y ⊙ g - y · Σ (y ⊙ g)
      const gy = e.mul(g, y);
      return [e.op('Sub', [gy, e.mul(y, e.op('ReduceSum', [gy, axes], { keepdims: 1 }))])];
    },
  };
}

function flattenRule(): OpRule {
  return {
    differentiable: [0],
    infer: (_e, node, [x]) => {
      if (!x) return [undefined];
      let axis = intAttr(node, 'axis', 1);
      if (axis < 0) axis += x.length;
      return [[product(x.slice(0, axis)), product(x.slice(axis))]];
    },
    backward: ({ e, node, grads }) => [reshapeLike(e, grads[0]!, node.inputs[0])],
  };
}

function reshapeRule(): OpRule {
  return {
    differentiable: [0],
    infer: (e, node, [x]) => {
      const target = e.intValues.get(node.inputs[1]);
      if (!target) return [undefined];
      const allowZero = intAttr(node, 'allowzero', 0) === 1;
      const dims: StaticDim[] = target.map((d, i) => (d === 0 && !allowZero ? (x ? x[i] ?? null : null) : d));
      const minus = dims.indexOf(-1);
      if (minus >= 0) {
        const total = x ? product(x) : null;
        const rest = product(dims.filter((_, i) => i !== minus));
        dims[minus] = total !== null && rest !== null && rest > 0 ? total / rest : null;
      }
      return [dims];
    },
    backward: ({ e, node, grads }) => [reshapeLike(e, grads[0]!, node.inputs[0])],
  };
}

function dropoutRule(): OpRule {
  return {
    differentiable: [0],
    infer: (_e, _n, [x]) => [x, x],
    forward: (e, node, opts) => {
      const ratio = inputOr(node, 1) ?? e.scalar(0.5);
      const mask = node.outputs[1] || e.fresh(`${node.name}.mask`);
      const attrs: Record<string, number> = opts.dropoutSeed === undefined ? {} : { seed: opts.dropoutSeed };
      const training = e.op('Cast', [e.constant(int64Tensor([], [1]))], { to: BOOL_TYPE });
      e.g.node('Dropout', [node.inputs[0], ratio, training], [node.outputs[0], mask], attrs, node.name);
      return { mask, ratio };
    },
    backward: ({ e, grads, saved }) => {
      // y = x ⊙ mask / (1 - ratio)
      const scale = e.op('Div', [e.scalar(1), e.op('Sub', [e.scalar(1), saved.ratio])]);
      return [e.mul(e.mul(grads[0]!, e.op('Cast', [saved.mask], { to: FLOAT_TYPE })), scale)];
    },
  };
}

interface Window {
  kernel: number[];
  strides: number[];
  pads: number[];
  dilations: number[];
}

function windowOf(node: NodeDef, kernel: number[] | undefined): Window {
  const autoPad = stringAttr(node, 'auto_pad', 'NOTSET');
  if (autoPad !== 'NOTSET' && autoPad !== 'VALID') reject(node, `auto_pad=${autoPad} is not supported; export with explicit pads`);
  const k = intsAttr(node, 'kernel_shape') ?? kernel;
  if (!k) reject(node, 'kernel_shape is unknown');
  if (k.length !== 2) reject(node, `only 2-D windows are supported, got a ${k.length}-D kernel`);
  return {
    kernel: k,
    strides: intsAttr(node, 'strides') ?? [1, 1],
    pads: autoPad === 'VALID' ? [0, 0, 0, 0] : intsAttr(node, 'pads') ?? [0, 0, 0, 0],
    dilations: intsAttr(node, 'dilations') ?? [1, 1],
  };
}

function windowShape(x: StaticShape, channels: StaticDim, w: Window, ceil: boolean): StaticShape {
  if (!x || x.length !== 4) return undefined;
  const spatial = [0, 1].map((i) => {
    const size = x[2 + i];
    if (size === null) return null;
    const span = size + w.pads[i] + w.pads[i + 2] - w.dilations[i] * (w.kernel[i] - 1) - 1;
    return (ceil ? Math.ceil(span / w.strides[i]) : Math.floor(span / w.strides[i])) + 1;
  });
  return [x[0], channels, ...spatial];
}

/**
 * ConvTranspose spreads a window gradient over [pad_begin, pad_begin + span):
 * it is given only the begin pads, and the end is then cut or zero-padded to
 * the input size. Cropping the end pads in ConvTranspose itself would be
 * wrong when strided windows never reach the end padding (they then do reach
 * real inputs there).
 */
function spreadWindow(e: GraphEmitter, op: 'ConvTranspose', inputs: string[], x: string, w: Window): string {
  const beginPads = [w.pads[0], w.pads[1], 0, 0];
  const spread = e.op(op, inputs, { kernel_shape: w.kernel, strides: w.strides, pads: beginPads, dilations: w.dilations });
  const exact = w.strides.every((s) => s === 1) && w.pads[2] === 0 && w.pads[3] === 0;
  return exact ? spread : e.fitSpatialTo(spread, x);
}

function convRule(): OpRule {
  return {
    differentiable: [0, 1, 2],
    infer: (_e, node, [x, w]) => [windowShape(x, w ? w[0] : null, windowOf(node, w ? (w.slice(2) as number[]) : undefined), false)],
    check: (node, [x, w]) => {
      if (intAttr(node, 'group', 1) !== 1) reject(node, `group=${intAttr(node, 'group', 1)} is not supported (only group=1)`);
      if (!w || w.length !== 4 || w.some((d) => d === null)) reject(node, 'Conv needs a 4-D weight of known shape (2-D convolution)');
      if (x && x.length !== 4) reject(node, `Conv input must be 4-D [N, C, H, W], got rank ${x.length}`);
      windowOf(node, w.slice(2) as number[]);
    },
    backward: ({ e, node, grads, needs }) => {
      const [x, w] = node.inputs;
      const b = inputOr(node, 2);
      const g = grads[0]!;
      const ws = e.shape(w) as number[];
      const win = windowOf(node, ws.slice(2));
      let gx: string | undefined;
      let gw: string | undefined;
      let gb: string | undefined;
      if (needs[0]) {
        gx = spreadWindow(e, 'ConvTranspose', [g, w], x, win);
      }
      if (needs[1]) {
        // dW[m, c] = Σ_n x[n, c] ⋆ g[n, m]: a convolution over the batch axis
        // with the roles of stride and dilation swapped.
        const perm = [1, 0, 2, 3];
        const corr = e.op('Conv', [e.op('Transpose', [x], { perm }), e.op('Transpose', [g], { perm })], {
          strides: win.dilations,
          dilations: win.strides,
          pads: win.pads,
        });
        const cropped = win.strides.every((s) => s === 1) ? corr : e.op('Slice', [corr, e.ints([0, 0]), e.ints(win.kernel), e.ints([2, 3])]);
        gw = e.op('Transpose', [cropped], { perm });
      }
      if (b && needs[2]) gb = e.op('ReduceSum', [g, e.ints([0, 2, 3])], { keepdims: 0 });
      return [gx, gw, gb];
    },
  };
}

function checkPool(node: NodeDef, x: StaticShape): void {
  if (x && x.length !== 4) reject(node, `input must be 4-D [N, C, H, W], got rank ${x.length}`);
  windowOf(node, undefined);
}

function maxPoolRule(): OpRule {
  return {
    differentiable: [0],
    infer: (_e, node, [x]) => {
      const s = windowShape(x, x ? x[1] : null, windowOf(node, undefined), intAttr(node, 'ceil_mode', 0) === 1);
      return [s, s];
    },
    check: (node, [x]) => {
      checkPool(node, x);
      if (intAttr(node, 'storage_order', 0) !== 0) reject(node, 'storage_order=1 is not supported');
    },
    forward: (e, node) => {
      const indices = node.outputs[1] || e.fresh(`${node.name}.indices`);
      e.g.node('MaxPool', [node.inputs[0]], [node.outputs[0], indices], Object.fromEntries(node.attributes), node.name);
      return { indices };
    },
    backward: ({ e, node, grads, saved }) => {
      // Indices address the flattened input; overlapping windows add up.
      const x = node.inputs[0];
      const flat = e.ints([-1]);
      const zeros = e.op('ConstantOfShape', [e.op('Reshape', [e.op('Size', [x]), e.ints([1])])]);
      const scattered = e.op('ScatterElements', [zeros, e.op('Reshape', [saved.indices, flat]), e.op('Reshape', [grads[0]!, flat])], {
        axis: 0,
        reduction: 'add',
      });
      return [reshapeLike(e, scattered, x)];
    },
  };
}

function averagePoolRule(): OpRule {
  return {
    differentiable: [0],
    infer: (_e, node, [x]) => [windowShape(x, x ? x[1] : null, windowOf(node, undefined), false)],
    check: (node, [x]) => {
      checkPool(node, x);
      if (intAttr(node, 'ceil_mode', 0) !== 0) reject(node, 'ceil_mode=1 is not supported');
    },
    backward: ({ e, node, grads }) => {
      const x = node.inputs[0];
      const win = windowOf(node, undefined);
      const size = win.kernel[0] * win.kernel[1];
      const padded = win.pads.some((p) => p !== 0);
      let divisor = e.scalar(size);
      if (padded && intAttr(node, 'count_include_pad', 0) === 0) {
        // Per-window count of real (non-padding) inputs.
        const ones = e.op('ConstantOfShape', [e.op('Shape', [x])], { value: attr.tensor({ dataType: 'float', dims: [1], data: Float32Array.of(1) }) });
        const fraction = e.op('AveragePool', [ones], { kernel_shape: win.kernel, strides: win.strides, pads: win.pads, count_include_pad: 1 });
        divisor = e.mul(fraction, divisor);
      }
      // Every channel spreads g / count over its window: a ConvTranspose with a
      // kernel of ones on [N·C, 1, H', W'].
      const perChannel = e.op('Reshape', [e.op('Div', [grads[0]!, divisor]), e.ints([-1, 1, 0, 0])]);
      const ones = e.constant({ dataType: 'float', dims: [1, 1, ...win.kernel], data: new Float32Array(size).fill(1) });
      const flatX = e.op('Reshape', [x, e.ints([-1, 1, 0, 0])]);
      const spread = spreadWindow(e, 'ConvTranspose', [perChannel, ones], flatX, win);
      return [e.op('Reshape', [spread, e.op('Shape', [x])])];
    },
  };
}

function globalAveragePoolRule(): OpRule {
  return {
    differentiable: [0],
    infer: (_e, _n, [x]) => [x ? [x[0], x[1], ...x.slice(2).map(() => 1)] : undefined],
    backward: ({ e, node, grads }) => {
      const x = node.inputs[0];
      const area = e.op('Div', [e.elementCount(x), e.elementCount(node.outputs[0])]);
      return [e.op('Expand', [e.op('Div', [grads[0]!, area]), e.op('Shape', [x])])];
    },
  };
}

/**
 * Training-mode batch normalisation on x viewed as [N, C, L]: batch
 * statistics normalise, the running statistics move by `momentum` (ONNX
 * convention: new = momentum · old + (1 - momentum) · batch) and the running
 * variance takes the unbiased batch variance, as PyTorch does.
 */
function batchNormRule(): OpRule {
  return {
    differentiable: [0, 1, 2],
    infer: same,
    check: (node) => {
      if (node.outputs.length > 1 || intAttr(node, 'training_mode', 0) !== 0) {
        reject(node, 'the graph was exported in training mode; export it from model.eval()');
      }
    },
    forward: (e, node) => {
      const [x, scale, bias, runningMean, runningVar] = node.inputs;
      const eps = floatAttr(node, 'epsilon', 1e-5);
      const momentum = floatAttr(node, 'momentum', 0.9);
      const axes = [0, 2];
      const xr = e.op('Reshape', [x, e.ints([0, 0, -1])]);
      const mean = e.op('ReduceMean', [xr], { axes, keepdims: 1 });
      const centered = e.op('Sub', [xr, mean]);
      const variance = e.op('ReduceMean', [e.mul(centered, centered)], { axes, keepdims: 1 });
      const invStd = e.op('Reciprocal', [e.op('Sqrt', [e.op('Add', [variance, e.scalar(eps)])])]);
      const xhat = e.mul(centered, invStd);
      const column = e.ints([1, -1, 1]);
      const scale3 = e.op('Reshape', [scale, column]);
      const y = e.op('Add', [e.mul(xhat, scale3), e.op('Reshape', [bias, column])]);
      e.op('Reshape', [y, e.op('Shape', [x])], {}, node.outputs[0]);

      const perChannel = e.op('Div', [e.elementCount(x), e.elementCount(scale)]);
      const unbiased = e.mul(variance, e.op('Div', [perChannel, e.op('Sub', [perChannel, e.scalar(1)])]));
      const flat = e.ints([-1]);
      const blend = (old: string, batch: string, out: string) =>
        e.op('Add', [e.mul(old, e.scalar(momentum)), e.mul(e.op('Reshape', [batch, flat]), e.scalar(1 - momentum))], {}, out);
      blend(runningMean, mean, `${runningMean}.next`);
      blend(runningVar, unbiased, `${runningVar}.next`);
      return { xhat, invStd, scale3 };
    },
    backward: ({ e, node, grads, needs, saved }) => {
      const x = node.inputs[0];
      const gr = e.op('Reshape', [grads[0]!, e.ints([0, 0, -1])]);
      const axes = e.ints([0, 2]);
      const gScale = needs[1] ? e.op('ReduceSum', [e.mul(gr, saved.xhat), axes], { keepdims: 0 }) : undefined;
      const gBias = needs[2] ? e.op('ReduceSum', [gr, axes], { keepdims: 0 }) : undefined;
      let gx: string | undefined;
      if (needs[0]) {
        // dx = invStd · (dx̂ - mean(dx̂) - x̂ · mean(dx̂ ⊙ x̂)), dx̂ = g · scale
        const gxhat = e.mul(gr, saved.scale3);
        const meanG = e.op('ReduceMean', [gxhat], { axes: [0, 2], keepdims: 1 });
        const meanGX = e.op('ReduceMean', [e.mul(gxhat, saved.xhat)], { axes: [0, 2], keepdims: 1 });
        const inner = e.op('Sub', [e.op('Sub', [gxhat, meanG]), e.mul(saved.xhat, meanGX)]);
        gx = e.op('Reshape', [e.mul(inner, saved.invStd), e.op('Shape', [x])]);
      }
      return [gx, gScale, gBias];
    },
  };
}

/** Ops that only compute shapes; allowed anywhere gradients do not flow. */
const shapeOnly = (infer: OpRule['infer'] = () => [undefined]): OpRule => ({ differentiable: [], infer });

export const OP_RULES: Record<string, OpRule> = {
  Gemm: gemmRule(),
  MatMul: matmulRule(),
  Add: elementwise('Add'),
  Sub: elementwise('Sub'),
  Mul: elementwise('Mul'),
  Div: elementwise('Div'),
  Relu: unary((e, n, g) => e.op('Where', [e.op('Greater', [n.inputs[0], e.scalar(0)]), g, e.scalar(0)])),
  LeakyRelu: unary((e, n, g) =>
    e.op('Where', [e.op('Greater', [n.inputs[0], e.scalar(0)]), g, e.mul(g, e.scalar(floatAttr(n, 'alpha', 0.01)))]),
  ),
  Sigmoid: unary((e, n, g) => {
    const y = n.outputs[0];
    return e.mul(g, e.mul(y, e.op('Sub', [e.scalar(1), y])));
  }),
  Tanh: unary((e, n, g) => {
    const y = n.outputs[0];
    return e.mul(g, e.op('Sub', [e.scalar(1), e.mul(y, y)]));
  }),
  Softmax: softmaxRule(false),
  LogSoftmax: softmaxRule(true),
  Flatten: flattenRule(),
  Reshape: reshapeRule(),
  Identity: unary((_e, _n, g) => g),
  Dropout: dropoutRule(),
  Conv: convRule(),
  MaxPool: maxPoolRule(),
  AveragePool: averagePoolRule(),
  GlobalAveragePool: globalAveragePoolRule(),
  BatchNormalization: batchNormRule(),
  Constant: shapeOnly((e, node) => {
    const t = attrOf(node, 'value');
    if (t?.type !== 'tensor') return [undefined];
    if (t.value.dataType === 'int64') e.intValues.set(node.outputs[0], Array.from(t.value.data, Number));
    return [t.value.dims];
  }),
  Shape: shapeOnly((_e, _n, [x]) => [x ? [x.length] : undefined]),
  Gather: shapeOnly(),
  Unsqueeze: shapeOnly(),
  Concat: shapeOnly(),
};

export const SUPPORTED_OPS = Object.keys(OP_RULES);
