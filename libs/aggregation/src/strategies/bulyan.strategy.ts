import { coordinateMeanAroundMedian, krumScores, lowestScores, pairwiseSquaredDistances } from '../robust-rules';
import { RobustOutcome, RobustStrategy } from '../robust-strategy';
import { SamplingParameters } from '../strategy';
import { UpdateStore } from '../update-store';

export interface BulyanParameters extends SamplingParameters {
  num_malicious_clients: number;
}

/** Updates Bulyan needs to tolerate f > 0 hostile ones: n >= 4f + 3 (El Mhamdi et al. 2018). */
export const bulyanMinimumUpdates = (f: number): number => (f > 0 ? 4 * f + 3 : 1);

/**
 * Bulyan (El Mhamdi et al. 2018) over Krum. Step 1: theta = n - 2f times,
 * pick the Krum winner among the updates not yet picked. Step 2: per
 * coordinate, average the beta = theta - 2f picked values closest to their
 * median. Unweighted, as in the paper.
 */
export class Bulyan extends RobustStrategy<BulyanParameters> {
  readonly name = 'Bulyan';

  *combine(store: UpdateStore, blockValues: number): Generator<void, RobustOutcome> {
    const n = store.count;
    const f = this.parameters.num_malicious_clients;
    if (n < bulyanMinimumUpdates(f)) throw new Error(`Bulyan with num_malicious_clients ${f} needs at least ${bulyanMinimumUpdates(f)} updates, got ${n}`);
    const dist = yield* pairwiseSquaredDistances(store, blockValues);
    const theta = n - 2 * f;
    let remaining = Array.from({ length: n }, (_, i) => i);
    const picked: number[] = [];
    while (picked.length < theta) {
      const [best] = lowestScores(remaining, krumScores(dist, n, remaining, f), 1);
      picked.push(best);
      remaining = remaining.filter((i) => i !== best);
    }
    picked.sort((a, b) => a - b);
    return { flat: yield* coordinateMeanAroundMedian(store, blockValues, picked, theta - 2 * f), selected: picked };
  }
}
