import { StepKernel, SteppingStrategy } from '../linear-strategy';
import { packState, ServerStateful, StateTransfer, unpackState } from '../server-state';
import { SamplingParameters } from '../strategy';
import { StateMap, stateLike } from '../weight-arithmetic';
import { WeightMap } from '../weights';

export interface FedAvgMParameters extends SamplingParameters {
  server_learning_rate: number;
  server_momentum: number;
}

/**
 * FedAvgM (Hsu et al. 2019): server SGD with momentum on the pseudo-gradient
 * g = w_t - avg_t:  m_t = server_momentum * m_{t-1} + g (m_1 = g),
 * w_{t+1} = w_t - server_learning_rate * m_t. Without momentum, m_t = g.
 */
export class FedAvgM extends SteppingStrategy<FedAvgMParameters> implements ServerStateful {
  readonly name = 'FedAvgM';
  private momentum: Map<string, Float32Array> | null = null;

  saveServerState(how?: StateTransfer): StateMap {
    return packState('momentum', this.momentum, new Map(), how);
  }

  loadServerState(state: StateMap, template: WeightMap, how?: StateTransfer): void {
    this.momentum = unpackState(this.name, state, ['momentum'], template, how)?.get('momentum') ?? null;
  }

  protected beginStep(current: WeightMap): StepKernel {
    const { server_learning_rate: lr, server_momentum: beta } = this.parameters;
    const first = this.momentum === null;
    if (beta > 0 && first) this.momentum = stateLike(current);
    const momentum = beta > 0 ? this.momentum! : null;
    if (momentum) {
      for (const [name, t] of current) {
        if (momentum.get(name)?.length !== t.data.length) throw new Error(`FedAvgM: parameter '${name}' changed size between rounds`);
      }
    }
    return (name, w, avg, next, from, to) => {
      const m = momentum?.get(name);
      for (let i = from; i < to; i++) {
        let g = w[i] - avg[i];
        if (m) {
          m[i] = first ? g : beta * m[i] + g;
          g = m[i];
        }
        next[i] = w[i] - lr * g;
      }
    };
  }
}
