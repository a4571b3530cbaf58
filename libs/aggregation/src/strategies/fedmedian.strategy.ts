import { coordinateMedian } from '../robust-rules';
import { RobustOutcome, RobustStrategy } from '../robust-strategy';
import { SamplingParameters } from '../strategy';
import { UpdateStore } from '../update-store';

export type FedMedianParameters = SamplingParameters;

/** FedMedian (Yin et al. 2018): the coordinate-wise median of the updates, unweighted. */
export class FedMedian extends RobustStrategy<FedMedianParameters> {
  readonly name = 'FedMedian';

  *combine(store: UpdateStore, blockValues: number): Generator<void, RobustOutcome> {
    return { flat: yield* coordinateMedian(store, blockValues) };
  }
}
