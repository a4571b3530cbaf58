import { LinearStrategy } from '../linear-strategy';
import { SamplingParameters } from '../strategy';

export type FedAvgParameters = SamplingParameters;

/** FedAvg (McMahan et al. 2017): w = sum_k n_k w_k / sum_k n_k (the identity server step). */
export class FedAvg extends LinearStrategy<FedAvgParameters> {
  readonly name: string = 'FedAvg';
}
