import { createStrategy, PrivacyParameterError, resolvePrivacyParameters, withDifferentialPrivacy } from '@fl/aggregation';
import { LEGACY_STRATEGY, PrivacySettings } from '@fl/contracts';
import { TaskStrategy } from './task-strategy';

/** delta when the task gives none: well below 1 / (number of sites) for any federation this platform serves. */
export const DEFAULT_DELTA = 1e-5;

/** A privacy setting the task cannot run with; `parameter` names it under `privacy.`. */
export class TaskPrivacyError extends Error {
  constructor(
    readonly parameter: string | null,
    message: string,
  ) {
    super(message);
    this.name = 'TaskPrivacyError';
  }
}

/**
 * A task's differential-privacy settings checked and completed (defaults
 * applied), or undefined when it asks for none. Throws TaskPrivacyError
 * naming the parameter at fault.
 */
export function resolveTaskPrivacy(input: unknown, strategy: TaskStrategy): PrivacySettings | undefined {
  if (input === undefined || input === null) return undefined;
  if (typeof input !== 'object' || Array.isArray(input)) throw new TaskPrivacyError(null, `privacy must be an object, got ${JSON.stringify(input)}`);
  const { delta = DEFAULT_DELTA, epsilon_budget, ...rest } = input as Record<string, unknown>;
  if (typeof delta !== 'number' || !(delta > 0 && delta < 1)) throw new TaskPrivacyError('delta', `differential privacy: parameter 'delta' must be a number in (0, 1), got ${JSON.stringify(delta)}`);
  if (epsilon_budget !== undefined && (typeof epsilon_budget !== 'number' || !(epsilon_budget > 0) || !Number.isFinite(epsilon_budget))) {
    throw new TaskPrivacyError('epsilon_budget', `differential privacy: parameter 'epsilon_budget' must be a number > 0, got ${JSON.stringify(epsilon_budget)}`);
  }
  let params;
  try {
    params = resolvePrivacyParameters(rest);
  } catch (err) {
    if (err instanceof PrivacyParameterError) throw new TaskPrivacyError(err.parameter, err.message);
    throw err;
  }
  if (epsilon_budget !== undefined && params.noise_multiplier === 0) {
    throw new TaskPrivacyError('epsilon_budget', "differential privacy: parameter 'epsilon_budget' needs noise (noise_multiplier > 0): without noise epsilon is unbounded");
  }
  // The strategy must be one DP can wrap (central mode: one that averages).
  try {
    withDifferentialPrivacy(createStrategy(strategy.strategy === LEGACY_STRATEGY ? 'FedAvg' : strategy.strategy, strategy.strategy_params), params, 0);
  } catch (err) {
    throw new TaskPrivacyError('mode', `differential privacy: ${(err as Error).message}`);
  }
  return { ...params, delta, ...(epsilon_budget !== undefined ? { epsilon_budget: epsilon_budget as number } : {}) };
}
