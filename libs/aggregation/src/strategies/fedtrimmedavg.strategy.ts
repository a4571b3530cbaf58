import { coordinateTrimmedMean } from '../robust-rules';
import { RobustOutcome, RobustStrategy } from '../robust-strategy';
import { SamplingParameters } from '../strategy';
import { UpdateStore } from '../update-store';

export interface FedTrimmedAvgParameters extends SamplingParameters {
  beta: number;
}

/**
 * FedTrimmedAvg (Yin et al. 2018): per coordinate, drop the floor(beta * n)
 * largest and smallest values and average the rest, unweighted.
 */
export class FedTrimmedAvg extends RobustStrategy<FedTrimmedAvgParameters> {
  readonly name = 'FedTrimmedAvg';

  *combine(store: UpdateStore, blockValues: number): Generator<void, RobustOutcome> {
    return { flat: yield* coordinateTrimmedMean(store, blockValues, this.parameters.beta) };
  }
}
