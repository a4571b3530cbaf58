import { krumScores, lowestScores, pairwiseSquaredDistances, weightedAverage } from '../robust-rules';
import { RobustOutcome, RobustStrategy } from '../robust-strategy';
import { SamplingParameters } from '../strategy';
import { UpdateStore } from '../update-store';

export interface KrumParameters extends SamplingParameters {
  num_malicious_clients: number;
  num_clients_to_keep: number;
}

/** Updates Krum needs to tolerate f > 0 hostile ones: n > 2f + 2 (Blanchard et al. 2017). */
export const krumMinimumUpdates = (f: number): number => (f > 0 ? 2 * f + 3 : 1);

/**
 * Krum and Multi-Krum (Blanchard et al. 2017). Each update is scored by the
 * sum of its squared L2 distances to its n - f - 2 nearest others
 * (f = num_malicious_clients). Krum returns the update with the lowest score;
 * with num_clients_to_keep = m > 0 (Multi-Krum) the m lowest-scored updates
 * are averaged, weighted by examples as Flower does.
 */
export class Krum extends RobustStrategy<KrumParameters> {
  readonly name = 'Krum';

  *combine(store: UpdateStore, blockValues: number): Generator<void, RobustOutcome> {
    const n = store.count;
    const f = this.parameters.num_malicious_clients;
    const keep = this.parameters.num_clients_to_keep;
    if (n < krumMinimumUpdates(f)) throw new Error(`Krum with num_malicious_clients ${f} needs at least ${krumMinimumUpdates(f)} updates, got ${n}`);
    if (keep > n) throw new Error(`Krum: num_clients_to_keep ${keep} is more than the ${n} updates received`);
    const dist = yield* pairwiseSquaredDistances(store, blockValues);
    const ids = Array.from({ length: n }, (_, i) => i);
    const selected = lowestScores(ids, krumScores(dist, n, ids, f), Math.max(1, keep)).sort((a, b) => a - b);
    const weights = keep > 0 ? selected.map((i) => store.examples[i]) : [1];
    return { flat: yield* weightedAverage(store, blockValues, selected, weights), selected };
  }
}
