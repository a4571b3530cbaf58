import { FedOpt, FedOptParameters } from './fedopt';

/** FedAdagrad needs no beta_1 / beta_2 from the user: Flower fixes both at 0 (no momentum). */
export type FedAdagradParameters = Omit<FedOptParameters, 'beta_1' | 'beta_2'>;

/** FedAdagrad (Reddi et al. 2021): v_t = v_{t-1} + delta_t^2. */
export class FedAdagrad extends FedOpt {
  readonly name = 'FedAdagrad';

  constructor(parameters: FedAdagradParameters, options?: ConstructorParameters<typeof FedOpt>[1]) {
    super({ ...parameters, beta_1: 0, beta_2: 0 }, options);
  }

  protected secondMoment(v: number, delta: number): number {
    return v + delta * delta;
  }
}
