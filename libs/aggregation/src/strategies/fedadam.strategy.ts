import { FedOpt } from './fedopt';

/** FedAdam (Reddi et al. 2021): v_t = beta_2 v_{t-1} + (1 - beta_2) delta_t^2, no bias correction (as in the paper). */
export class FedAdam extends FedOpt {
  readonly name = 'FedAdam';

  protected secondMoment(v: number, delta: number): number {
    const b2 = this.parameters.beta_2;
    return b2 * v + (1 - b2) * delta * delta;
  }
}
