import { seededRandom } from '@fl/datasets';

export class InsufficientClientsError extends Error {
  constructor(
    readonly reason: string,
    readonly parameter: string,
  ) {
    super(reason);
    this.name = 'InsufficientClientsError';
  }
}

/** Flower's sample size: max(floor(available * fraction), min_clients). */
export function sampleSize(numAvailable: number, fraction: number, minClients: number): number {
  return Math.max(Math.floor(numAvailable * fraction), minClients);
}

export interface SampleRequest {
  phase: 'fit' | 'evaluate';
  fraction: number;
  minClients: number;
  minAvailableClients: number;
  serverRound: number;
  seed: number;
}

/**
 * Chooses the workers for one phase of one round: a pure function of the set
 * of available nodes (not their order), the round, the phase and the seed.
 * Throws InsufficientClientsError naming the parameter that cannot be met,
 * so that the caller can wait for more workers and fail with that reason at
 * its deadline. A fraction of 0 for evaluate means no federated evaluation.
 */
export function sampleClients(available: readonly string[], req: SampleRequest): string[] {
  const nodes = [...new Set(available)].sort();
  const fractionName = req.phase === 'fit' ? 'fraction_fit' : 'fraction_evaluate';
  const minName = req.phase === 'fit' ? 'min_fit_clients' : 'min_evaluate_clients';
  if (req.phase === 'evaluate' && req.fraction === 0) return [];
  if (nodes.length < req.minAvailableClients) {
    throw new InsufficientClientsError(
      `${nodes.length} worker(s) available, min_available_clients is ${req.minAvailableClients}`,
      'min_available_clients',
    );
  }
  const want = sampleSize(nodes.length, req.fraction, req.minClients);
  if (want > nodes.length) {
    throw new InsufficientClientsError(
      `${nodes.length} worker(s) available, ${want} needed for ${req.phase} (${minName} ${req.minClients}, ${fractionName} ${req.fraction})`,
      minName,
    );
  }
  // Partial Fisher-Yates: the first `want` places of a seeded permutation.
  const rand = seededRandom(mixSeed(req.seed, req.serverRound, req.phase === 'fit' ? 1 : 2));
  for (let i = 0; i < want; i++) {
    const j = i + Math.floor(rand() * (nodes.length - i));
    const t = nodes[i];
    nodes[i] = nodes[j];
    nodes[j] = t;
  }
  return nodes.slice(0, want);
}

/** Spreads (seed, round, phase) over 32 bits so that neighbouring rounds draw unrelated samples. */
function mixSeed(seed: number, round: number, phase: number): number {
  let h = Math.imul((seed | 0) ^ 0x2545f491, 0x9e3779b1);
  h = Math.imul(h ^ (round | 0), 0x85ebca6b);
  h = Math.imul(h ^ phase, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}
