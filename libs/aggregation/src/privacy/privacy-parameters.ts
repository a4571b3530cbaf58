/** Who adds the noise: the coordinator to the aggregate (central) or each worker to its own update (local). */
export type PrivacyMode = 'central' | 'local';

/** Client-level DP settings of a task; names follow Flower's DP wrappers. */
export interface PrivacyParameters {
  mode: PrivacyMode;
  /** z: noise standard deviation over the clipping norm (sensitivity). */
  noise_multiplier: number;
  /** C: L2 bound of each update's difference to the global weights; the starting value with adaptive clipping. */
  clipping_norm: number;
  adaptive_clipping: boolean;
  /** gamma: the fraction of updates meant to stay unclipped. */
  target_clipped_quantile: number;
  /** eta_C: step of the geometric update of the clipping norm. */
  clip_norm_lr: number;
  /** sigma_b: noise on the count of unclipped updates; default (number sampled) / 20, as Andrew et al. suggest. */
  clipped_count_stddev?: number;
}

export const DEFAULT_PRIVACY: Omit<PrivacyParameters, 'noise_multiplier' | 'clipping_norm'> = {
  mode: 'central',
  adaptive_clipping: false,
  target_clipped_quantile: 0.5,
  clip_norm_lr: 0.2,
};

export class PrivacyParameterError extends Error {
  constructor(
    readonly parameter: string,
    readonly problem: string,
  ) {
    super(`differential privacy: parameter '${parameter}' ${problem}`);
    this.name = 'PrivacyParameterError';
  }
}

/** Defaults applied and every value checked; throws PrivacyParameterError naming the first bad one. */
export function resolvePrivacyParameters(given: Record<string, unknown>): PrivacyParameters {
  const known = ['mode', 'noise_multiplier', 'clipping_norm', 'adaptive_clipping', 'target_clipped_quantile', 'clip_norm_lr', 'clipped_count_stddev'];
  for (const key of Object.keys(given)) {
    if (!known.includes(key)) throw new PrivacyParameterError(key, `is not a privacy parameter; they are ${known.join(', ')}`);
  }
  const p = { ...DEFAULT_PRIVACY, ...given } as Record<string, unknown>;
  const num = (name: string, ok: (x: number) => boolean, what: string, optional = false) => {
    const v = p[name];
    if (v === undefined && optional) return;
    if (v === undefined) throw new PrivacyParameterError(name, 'is required');
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new PrivacyParameterError(name, `must be a finite number, got ${JSON.stringify(v)}`);
    if (!ok(v)) throw new PrivacyParameterError(name, `must be ${what}, got ${v}`);
  };
  if (p.mode !== 'central' && p.mode !== 'local') throw new PrivacyParameterError('mode', `must be 'central' or 'local', got ${JSON.stringify(p.mode)}`);
  num('noise_multiplier', (x) => x >= 0, '>= 0');
  num('clipping_norm', (x) => x > 0, '> 0');
  if (typeof p.adaptive_clipping !== 'boolean') throw new PrivacyParameterError('adaptive_clipping', `must be true or false, got ${JSON.stringify(p.adaptive_clipping)}`);
  num('target_clipped_quantile', (x) => x >= 0 && x <= 1, 'in [0, 1]');
  num('clip_norm_lr', (x) => x > 0, '> 0');
  num('clipped_count_stddev', (x) => x >= 0, '>= 0', true);
  if (p.adaptive_clipping && p.mode === 'local') throw new PrivacyParameterError('adaptive_clipping', 'needs mode central (the coordinator counts the clipped updates)');
  return p as unknown as PrivacyParameters;
}

/**
 * Andrew et al. 2021 (Theorem 1): the clipped-count query with noise sigma_b
 * and the update query with noise multiplier z_delta together cost as much as
 * one Gaussian mechanism with z = (z_delta^-2 + (2 sigma_b)^-2)^(-1/2). Given
 * the task's z, the update query gets z_delta = (z^-2 - (2 sigma_b)^-2)^(-1/2).
 */
export function updateNoiseMultiplier(z: number, clippedCountStddev: number): number {
  if (z === 0) return 0;
  const rest = z ** -2 - (2 * clippedCountStddev) ** -2;
  if (!(rest > 0)) {
    throw new PrivacyParameterError(
      'clipped_count_stddev',
      `must be more than noise_multiplier / 2 (${z / 2}) so that noise is left for the update, got ${clippedCountStddev}`,
    );
  }
  return rest ** -0.5;
}
