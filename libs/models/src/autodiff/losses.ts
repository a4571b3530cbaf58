/**
 * Loss functions appended to the prediction of an imported graph. Each emits
 * the batch-mean loss and its gradient with respect to the prediction in
 * closed form, which is cheaper and more stable than differentiating the
 * loss expression node by node.
 */
import { int64Tensor } from '../onnx';
import { FLOAT_TYPE, GraphEmitter } from './emitter';

export const LOSSES = ['softmax_cross_entropy', 'binary_cross_entropy_with_logits', 'mean_squared_error'] as const;
export type LossKind = (typeof LOSSES)[number];

export interface LossValues {
  /** Float scalar. */
  loss: string;
  /** dLoss/dPrediction, shaped like the prediction. */
  gradient: string;
}

/**
 * Softmax cross-entropy over the last axis of `logits`; `target` holds one
 * probability row per example (one-hot for hard labels). With class weights
 * w, as in PyTorch: loss = -Σ w_c·y·log p / Σ w_c·y, else -Σ y·log p / rows.
 */
function softmaxCrossEntropy(e: GraphEmitter, logits: string, target: string, classWeights?: string): LossValues {
  const logProbs = e.op('LogSoftmax', [logits], { axis: -1 });
  const lastAxis = e.ints([-1]);
  const weighted = classWeights ? e.mul(target, classWeights) : target;
  let denominator: string;
  if (classWeights) denominator = e.sumAll(weighted);
  else {
    const shape = e.shape(logits);
    const classes = shape && shape[shape.length - 1] !== null
      ? e.scalar(shape[shape.length - 1] as number)
      : e.op('Cast', [e.op('Gather', [e.op('Shape', [logits]), e.constant(int64Tensor([], [-1]))])], { to: FLOAT_TYPE });
    denominator = e.op('Div', [e.elementCount(logits), classes]);
  }
  const loss = e.op('Neg', [e.op('Div', [e.sumAll(e.mul(weighted, logProbs)), denominator])]);
  // d/dz of -Σ a·log softmax(z) = softmax(z)·Σa - a, row by row
  const rowMass = e.op('ReduceSum', [weighted, lastAxis], { keepdims: 1 });
  const gradient = e.op('Div', [e.op('Sub', [e.mul(e.op('Exp', [logProbs]), rowMass), weighted]), denominator]);
  return { loss, gradient };
}

/** Mean over all elements of max(z, 0) - z·y + log(1 + e^-|z|). */
function binaryCrossEntropyWithLogits(e: GraphEmitter, logits: string, target: string): LossValues {
  const count = e.elementCount(logits);
  const softplus = e.op('Softplus', [e.op('Neg', [e.op('Abs', [logits])])]);
  const perElement = e.op('Add', [e.op('Sub', [e.op('Relu', [logits]), e.mul(logits, target)]), softplus]);
  const loss = e.op('Div', [e.sumAll(perElement), count]);
  const gradient = e.op('Div', [e.op('Sub', [e.op('Sigmoid', [logits]), target]), count]);
  return { loss, gradient };
}

/** Mean over all elements of (prediction - y)². */
function meanSquaredError(e: GraphEmitter, prediction: string, target: string): LossValues {
  const count = e.elementCount(prediction);
  const diff = e.op('Sub', [prediction, target]);
  const loss = e.op('Div', [e.sumAll(e.mul(diff, diff)), count]);
  const gradient = e.mul(diff, e.op('Div', [e.scalar(2), count]));
  return { loss, gradient };
}

export function emitLoss(e: GraphEmitter, kind: LossKind, prediction: string, target: string, classWeights?: string): LossValues {
  switch (kind) {
    case 'softmax_cross_entropy':
      return softmaxCrossEntropy(e, prediction, target, classWeights);
    case 'binary_cross_entropy_with_logits':
      return binaryCrossEntropyWithLogits(e, prediction, target);
    case 'mean_squared_error':
      return meanSquaredError(e, prediction, target);
  }
}
