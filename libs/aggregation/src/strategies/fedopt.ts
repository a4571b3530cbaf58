import { SteppingStrategy } from '../linear-strategy';
import { packState, ServerStateful, StateTransfer, unpackState } from '../server-state';
import { ClientConfig, SamplingParameters } from '../strategy';
import { AverageMap, StateMap, stateLike } from '../weight-arithmetic';
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
  private m: StateMap | null = null;
  private v: StateMap | null = null;

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

  /** One step over every parameter, the new weights going to `target(name)`, which may be the average itself (each value is read before it is written). */
  protected step(current: WeightMap, average: AverageMap, target: (name: string, t: { shape: number[]; data: Float32Array }) => Float32Array): void {
    const { eta, beta_1: b1, tau } = this.parameters;
    this.m ??= stateLike(current);
    this.v ??= stateLike(current);
    for (const [name, t] of current) {
      const w = t.data;
      const avg = average.get(name)!;
      const m = this.m.get(name);
      const v = this.v.get(name);
      if (!m || !v || m.length !== w.length) throw new Error(`${this.name}: parameter '${name}' changed between rounds`);
      const next = target(name, t);
      for (let i = 0; i < w.length; i++) {
        const delta = avg[i] - w[i];
        m[i] = b1 * m[i] + (1 - b1) * delta;
        v[i] = this.secondMoment(v[i], delta);
        next[i] = w[i] + (eta * m[i]) / (Math.sqrt(v[i]) + tau);
      }
    }
  }
}
