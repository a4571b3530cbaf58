import { StepKernel, SteppingStrategy } from '../linear-strategy';
import { packState, ServerStateful, StateTransfer, unpackState } from '../server-state';
import { ClientConfig, SamplingParameters } from '../strategy';
import { StateMap, stateLike } from '../weight-arithmetic';
import { WeightMap } from '../weights';

export interface FedOptParameters extends SamplingParameters {
  eta: number;
  eta_l: number;
  beta_1: number;
  beta_2: number;
  tau: number;
}

/**
 * The FedOpt family (Reddi et al. 2021, "Adaptive Federated Optimization",
 * Algorithm 2): with the pseudo-gradient delta_t = avg_t - w_t,
 *   m_t = beta_1 m_{t-1} + (1 - beta_1) delta_t
 *   v_t = (Adagrad | Adam | Yogi update)
 *   w_{t+1} = w_t + eta m_t / (sqrt(v_t) + tau)
 * with m and v starting at zero, as Flower does (the paper allows v_{-1} >= tau^2).
 * The client learning rate eta_l is sent in the fit config for workers that
 * take their learning rate from the strategy.
 */
export abstract class FedOpt<P extends FedOptParameters = FedOptParameters> extends SteppingStrategy<P> implements ServerStateful {
  private m: Map<string, Float32Array> | null = null;
  private v: Map<string, Float32Array> | null = null;

  saveServerState(how?: StateTransfer): StateMap {
    const out: StateMap = new Map();
    packState('m', this.m, out, how);
    return packState('v', this.v, out, how);
  }

  loadServerState(state: StateMap, template: WeightMap, how?: StateTransfer): void {
    const slots = unpackState(this.name, state, ['m', 'v'], template, how);
    this.m = slots?.get('m') ?? null;
    this.v = slots?.get('v') ?? null;
  }

  /** The second-moment update for one coordinate: v_{t-1}, delta_t -> v_t. */
  protected abstract secondMoment(v: number, delta: number): number;

  fitConfig(): ClientConfig {
    return { eta_l: this.parameters.eta_l };
  }

  protected beginStep(current: WeightMap): StepKernel {
    const { eta, beta_1: b1, tau } = this.parameters;
    const ms = (this.m ??= stateLike(current));
    const vs = (this.v ??= stateLike(current));
    for (const [name, t] of current) {
      const m = ms.get(name);
      const v = vs.get(name);
      if (!m || !v || m.length !== t.data.length || v.length !== t.data.length) throw new Error(`${this.name}: parameter '${name}' changed between rounds`);
    }
    return (name, w, avg, next, from, to) => {
      const m = ms.get(name)!;
      const v = vs.get(name)!;
      for (let i = from; i < to; i++) {
        const delta = avg[i] - w[i];
        m[i] = b1 * m[i] + (1 - b1) * delta;
        v[i] = this.secondMoment(v[i], delta);
        next[i] = w[i] + (eta * m[i]) / (Math.sqrt(v[i]) + tau);
      }
    };
  }
}
