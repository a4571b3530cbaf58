/**
 * Optimizer updates written into the train-step graph. Hyper-parameters are
 * scalar graph inputs so one graph serves every learning rate; optimizer
 * state is carried by the caller from `<state>.next` back to `<state>`.
 * Formulas follow PyTorch's SGD (dampening 0), Adam and AdamW so imported
 * models train as they did where they were designed.
 */
import { GraphEmitter } from './emitter';

export const OPTIMIZERS = ['sgd', 'sgd_momentum', 'adam', 'adamw'] as const;
export type OptimizerKind = (typeof OPTIMIZERS)[number];

/** Scalar hyper-parameter inputs per optimizer, with their defaults. */
export const OPTIMIZER_HYPER_PARAMETERS: Record<OptimizerKind, Record<string, number>> = {
  sgd: { lr: 0.01 },
  sgd_momentum: { lr: 0.01, momentum: 0.9 },
  adam: { lr: 0.001, beta1: 0.9, beta2: 0.999, epsilon: 1e-8 },
  adamw: { lr: 0.001, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weight_decay: 0.01 },
};

/** Step counter of Adam and AdamW (float scalar, starts at 0). */
export const ADAM_STEP = 'optimizer.step';

export interface OptimizerSlot {
  name: string;
  shape: number[];
}

/** The optimizer state tensors for `params`, all zero-initialised. */
export function optimizerState(kind: OptimizerKind, params: OptimizerSlot[]): OptimizerSlot[] {
  switch (kind) {
    case 'sgd':
      return [];
    case 'sgd_momentum':
      return params.map((p) => ({ name: `${p.name}.momentum`, shape: p.shape }));
    case 'adam':
    case 'adamw':
      return [
        ...params.flatMap((p) => [
          { name: `${p.name}.adam_m`, shape: p.shape },
          { name: `${p.name}.adam_v`, shape: p.shape },
        ]),
        { name: ADAM_STEP, shape: [] },
      ];
  }
}

export interface GradientTransforms {
  /** Adds mu·(w - w_global) (FedProx); reads inputs `mu` and `<param>.global`. */
  fedProx: boolean;
  /** Scales all gradients by min(1, max_grad_norm / (‖g‖ + 1e-6)); reads input `max_grad_norm`. */
  clipGradNorm: boolean;
}

/**
 * Writes `<param>.next` and `<state>.next` for every parameter given its
 * gradient. The proximal term is added before clipping, as it would be if it
 * were part of the loss.
 */
export function emitOptimizer(
  e: GraphEmitter,
  kind: OptimizerKind,
  params: { name: string; gradient: string }[],
  transforms: GradientTransforms,
): void {
  let grads = params.map((p) =>
    transforms.fedProx ? e.op('Add', [p.gradient, e.mul('mu', e.op('Sub', [p.name, `${p.name}.global`]))]) : p.gradient,
  );
  if (transforms.clipGradNorm) {
    const squares = grads.map((g) => e.op('ReduceSumSquare', [g], { keepdims: 0 }));
    const total = squares.length === 1 ? squares[0] : e.op('Sum', squares);
    const norm = e.op('Sqrt', [total]);
    const coefficient = e.op('Min', [e.scalar(1), e.op('Div', ['max_grad_norm', e.op('Add', [norm, e.scalar(1e-6)])])]);
    grads = grads.map((g) => e.mul(g, coefficient));
  }
  let step: { biasCorrection1: string; biasCorrection2: string } | undefined;
  if (kind === 'adam' || kind === 'adamw') {
    const t = e.op('Add', [ADAM_STEP, e.scalar(1)], {}, `${ADAM_STEP}.next`);
    const one = e.scalar(1);
    step = {
      biasCorrection1: e.op('Sub', [one, e.op('Pow', ['beta1', t])]),
      biasCorrection2: e.op('Sub', [one, e.op('Pow', ['beta2', t])]),
    };
  }
  params.forEach((p, i) => {
    const g = grads[i];
    const next = `${p.name}.next`;
    switch (kind) {
      case 'sgd':
        e.op('Sub', [p.name, e.mul('lr', g)], {}, next);
        break;
      case 'sgd_momentum': {
        const velocity = e.op('Add', [e.mul('momentum', `${p.name}.momentum`), g], {}, `${p.name}.momentum.next`);
        e.op('Sub', [p.name, e.mul('lr', velocity)], {}, next);
        break;
      }
      case 'adam':
      case 'adamw': {
        const { biasCorrection1, biasCorrection2 } = step!;
        const one = e.scalar(1);
        const m = e.op('Add', [e.mul('beta1', `${p.name}.adam_m`), e.mul(e.op('Sub', [one, 'beta1']), g)], {}, `${p.name}.adam_m.next`);
        const v = e.op('Add', [e.mul('beta2', `${p.name}.adam_v`), e.mul(e.op('Sub', [one, 'beta2']), e.mul(g, g))], {}, `${p.name}.adam_v.next`);
        const denominator = e.op('Add', [e.op('Sqrt', [e.op('Div', [v, biasCorrection2])]), 'epsilon']);
        const update = e.op('Div', [e.op('Div', [m, biasCorrection1]), denominator]);
        // AdamW decays the weight itself, decoupled from the gradient.
        const base = kind === 'adamw' ? e.mul(p.name, e.op('Sub', [one, e.mul('lr', 'weight_decay')])) : p.name;
        e.op('Sub', [base, e.mul('lr', update)], {}, next);
        break;
      }
    }
  });
}
