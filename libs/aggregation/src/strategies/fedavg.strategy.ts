import { LinearStrategy, toWeights } from '../linear-strategy';
import { SamplingParameters } from '../strategy';
import { AverageMap } from '../weight-arithmetic';
import { WeightMap } from '../weights';

export type FedAvgParameters = SamplingParameters;

/** FedAvg (McMahan et al. 2017): w = sum_k n_k w_k / sum_k n_k. */
export class FedAvg extends LinearStrategy<FedAvgParameters> {
  readonly name: string = 'FedAvg';

  serverStep(_serverRound: number, current: WeightMap, average: AverageMap): WeightMap {
    return toWeights(current, average);
  }
}
