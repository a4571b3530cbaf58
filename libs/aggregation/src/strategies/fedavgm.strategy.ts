import { LinearStrategy } from '../linear-strategy';
import { packState, ServerStateful, unpackState } from '../server-state';
import { SamplingParameters } from '../strategy';
import { AverageMap, StateMap, stateLike } from '../weight-arithmetic';
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
export class FedAvgM extends LinearStrategy<FedAvgMParameters> implements ServerStateful {
  readonly name = 'FedAvgM';
  private momentum: StateMap | null = null;

  saveServerState(): StateMap {
    return packState('momentum', this.momentum, new Map());
  }

  loadServerState(state: StateMap, template: WeightMap): void {
    this.momentum = unpackState(this.name, state, ['momentum'], template)?.get('momentum') ?? null;
  }

  serverStep(_serverRound: number, current: WeightMap, average: AverageMap): WeightMap {
    const { server_learning_rate: lr, server_momentum: beta } = this.parameters;
    const first = this.momentum === null;
    if (beta > 0 && first) this.momentum = stateLike(current);
    const out: WeightMap = new Map();
    for (const [name, t] of current) {
      const w = t.data;
      const avg = average.get(name)!;
      const m = beta > 0 ? this.momentum!.get(name) : undefined;
      if (m && m.length !== w.length) throw new Error(`FedAvgM: parameter '${name}' changed size between rounds`);
      const next = new Float32Array(w.length);
      for (let i = 0; i < w.length; i++) {
        let g = w[i] - avg[i];
        if (m) {
          m[i] = first ? g : beta * m[i] + g;
          g = m[i];
        }
        next[i] = w[i] - lr * g;
      }
      out.set(name, { shape: [...t.shape], data: next });
    }
    return out;
  }
}
