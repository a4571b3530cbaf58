/**
 * Rényi DP of the sampled Gaussian mechanism (Mironov, Talwar, Zhang 2019,
 * "Rényi Differential Privacy of the Sampled Gaussian Mechanism", Section 3.3,
 * integer orders): each of the `rounds` rounds includes every worker with
 * probability q and adds Gaussian noise of standard deviation sigma times the
 * sensitivity. For an integer order alpha >= 2,
 *   A_alpha = sum_{k=0..alpha} C(alpha, k) (1 - q)^(alpha - k) q^k exp((k^2 - k) / (2 sigma^2)),
 *   RDP(alpha) = log(A_alpha) / (alpha - 1),
 * computed in log space. RDP composes by addition over rounds; the (epsilon,
 * delta) guarantee is the minimum over orders of a conversion:
 *   'balle2020' (default; Balle et al. 2020 Theorem 21, also Canonne, Kamath, Steinke 2020):
 *       eps = rdp + log((alpha - 1) / alpha) - (log delta + log alpha) / (alpha - 1)
 *   'classic' (Mironov 2017 Proposition 3):
 *       eps = rdp - log(delta) / (alpha - 1)
 * Only integer orders are used: fractional orders would tighten epsilon a
 * little for small epsilons and are not needed for a valid bound.
 */

export type RdpConversion = 'balle2020' | 'classic';

export const DEFAULT_ORDERS: readonly number[] = [
  ...Array.from({ length: 63 }, (_, i) => i + 2),
  72, 80, 96, 128, 160, 192, 256, 384, 512, 1024,
];

function logAdd(a: number, b: number): number {
  if (a === -Infinity) return b;
  if (b === -Infinity) return a;
  const m = Math.max(a, b);
  return m + Math.log(Math.exp(a - m) + Math.exp(b - m));
}

function logBinomial(n: number, k: number): number {
  let s = 0;
  // log C(n, k) as a sum of logs: exact enough for n up to a few thousand, no gamma function needed.
  for (let i = 1; i <= k; i++) s += Math.log(n - k + i) - Math.log(i);
  return s;
}

/** RDP of one round of the sampled Gaussian mechanism at an integer order alpha >= 2. */
export function sampledGaussianRdp(q: number, sigma: number, alpha: number): number {
  if (!(q >= 0 && q <= 1)) throw new Error(`sampling rate q must be in [0, 1], got ${q}`);
  if (!(sigma >= 0)) throw new Error(`noise multiplier must be >= 0, got ${sigma}`);
  if (!Number.isInteger(alpha) || alpha < 2) throw new Error(`RDP order must be an integer >= 2, got ${alpha}`);
  if (q === 0) return 0;
  if (sigma === 0) return Infinity;
  if (q === 1) return alpha / (2 * sigma * sigma);
  const lq = Math.log(q);
  const l1q = Math.log1p(-q);
  let logA = -Infinity;
  for (let k = 0; k <= alpha; k++) {
    logA = logAdd(logA, logBinomial(alpha, k) + (alpha - k) * l1q + k * lq + (k * k - k) / (2 * sigma * sigma));
  }
  return logA / (alpha - 1);
}

/** (epsilon, order) from RDP values at the given orders: the minimum over orders of the chosen conversion, never below 0. */
export function epsilonFromRdp(orders: readonly number[], rdp: readonly number[], delta: number, conversion: RdpConversion = 'balle2020'): { epsilon: number; order: number } {
  if (!(delta > 0 && delta < 1)) throw new Error(`delta must be in (0, 1), got ${delta}`);
  let best = { epsilon: Infinity, order: NaN };
  orders.forEach((a, i) => {
    const r = rdp[i];
    const eps =
      conversion === 'classic'
        ? r - Math.log(delta) / (a - 1)
        : r + Math.log((a - 1) / a) - (Math.log(delta) + Math.log(a)) / (a - 1);
    if (eps < best.epsilon) best = { epsilon: Math.max(0, eps), order: a };
  });
  return best;
}

export interface PrivacySpent {
  epsilon: number;
  delta: number;
  order: number;
  rounds: number;
}

/**
 * Tracks a task's privacy loss round by round. Each round is one sampled
 * Gaussian mechanism with the round's sampling rate q (workers sampled /
 * workers in the population) and noise multiplier.
 */
export class PrivacyAccountant {
  private readonly rdp: Float64Array;
  private count = 0;

  constructor(
    readonly delta: number,
    readonly orders: readonly number[] = DEFAULT_ORDERS,
    readonly conversion: RdpConversion = 'balle2020',
  ) {
    if (!(delta > 0 && delta < 1)) throw new Error(`delta must be in (0, 1), got ${delta}`);
    this.rdp = new Float64Array(orders.length);
  }

  /** RDP of `rounds` more rounds, without recording them. */
  static roundRdp(q: number, noiseMultiplier: number, orders: readonly number[], rounds = 1): Float64Array {
    return Float64Array.from(orders, (a) => rounds * sampledGaussianRdp(q, noiseMultiplier, a));
  }

  get rounds(): number {
    return this.count;
  }

  /** Records `rounds` rounds at sampling rate q and noise multiplier sigma. */
  addRounds(q: number, noiseMultiplier: number, rounds = 1): void {
    const r = PrivacyAccountant.roundRdp(q, noiseMultiplier, this.orders, rounds);
    for (let i = 0; i < r.length; i++) this.rdp[i] += r[i];
    this.count += rounds;
  }

  /** The accumulated RDP per order, for a checkpoint. */
  saveState(): { rdp: Float64Array; rounds: number } {
    return { rdp: Float64Array.from(this.rdp), rounds: this.count };
  }

  /** Continues from a checkpoint's state (same orders). */
  loadState(rdp: ArrayLike<number>, rounds: number): void {
    if (rdp.length !== this.rdp.length) throw new Error(`privacy accounting of ${rdp.length} orders does not fit the accountant's ${this.rdp.length}`);
    if (!Number.isSafeInteger(rounds) || rounds < 0) throw new Error(`privacy accounting: ${rounds} is not a count of rounds`);
    for (let i = 0; i < rdp.length; i++) {
      if (!(rdp[i] >= 0)) throw new Error(`privacy accounting: RDP ${rdp[i]} at order ${this.orders[i]} is not a non-negative number`);
    }
    this.rdp.set(rdp);
    this.count = rounds;
  }

  spent(): PrivacySpent {
    const { epsilon, order } = epsilonFromRdp(this.orders, Array.from(this.rdp), this.delta, this.conversion);
    return { epsilon, delta: this.delta, order, rounds: this.count };
  }

  /** Epsilon after one more round at (q, sigma), without recording it. */
  epsilonAfterNextRound(q: number, noiseMultiplier: number): number {
    const next = PrivacyAccountant.roundRdp(q, noiseMultiplier, this.orders);
    const total = Array.from(this.rdp, (x, i) => x + next[i]);
    return epsilonFromRdp(this.orders, total, this.delta, this.conversion).epsilon;
  }

  /** True when one more round at (q, sigma) would take epsilon beyond the budget: the task then stops before it. */
  wouldExceed(epsilonBudget: number, q: number, noiseMultiplier: number): boolean {
    if (!(epsilonBudget > 0)) throw new Error(`privacy budget epsilon must be > 0, got ${epsilonBudget}`);
    return this.epsilonAfterNextRound(q, noiseMultiplier) > epsilonBudget;
  }
}
