import { FedOpt } from './fedopt';

/** FedYogi (Reddi et al. 2021): v_t = v_{t-1} - (1 - beta_2) delta_t^2 sign(v_{t-1} - delta_t^2). */
export class FedYogi extends FedOpt {
  readonly name = 'FedYogi';

  protected secondMoment(v: number, delta: number): number {
    const d2 = delta * delta;
    return v - (1 - this.parameters.beta_2) * d2 * Math.sign(v - d2);
  }
}
