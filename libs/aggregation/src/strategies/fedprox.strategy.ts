import { LinearStrategy } from '../linear-strategy';
import { ClientConfig, SamplingParameters } from '../strategy';

export interface FedProxParameters extends SamplingParameters {
  proximal_mu: number;
}

/**
 * FedProx (Li et al. 2020): the server aggregates as FedAvg; each worker adds
 * (proximal_mu / 2) ||w - w_global||^2 to its local loss, so proximal_mu goes
 * into every fit config.
 */
export class FedProx extends LinearStrategy<FedProxParameters> {
  readonly name = 'FedProx';

  fitConfig(): ClientConfig {
    return { proximal_mu: this.parameters.proximal_mu };
  }
}
