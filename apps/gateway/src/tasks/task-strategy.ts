import { listStrategies, ParameterSpec, resolveStrategyParameters, StrategyParameterError, strategySpec, StrategySpec } from '@fl/aggregation';
import { DEFAULT_FL_SETTINGS, LEGACY_STRATEGY } from '@fl/contracts';

/**
 * Flower's sampling parameters that are also top-level fields of a task: one
 * value serves both, given in either place.
 */
const TASK_SAMPLING = ['min_fit_clients', 'fraction_fit'] as const;

/** Flower's evaluation sampling, which the coordinator does not use: every online worker evaluates each round. */
const NOT_USED_HERE = new Set(['fraction_evaluate', 'min_evaluate_clients', 'min_available_clients']);

/** Strategies the edge workers cannot serve yet, and why. */
const UNAVAILABLE: Record<string, string> = {
  QFedAvg: 'edge workers do not report loss_before_fit (their loss on the weights they received), by which QFedAvg weighs their updates',
};

/** What runs differently here from the published strategy. */
const LIMITATIONS: Record<string, string> = {
  FedProx: 'server side only: edge workers do not add the proximal term to their loss yet, so the task trains as FedAvg',
  FedAdagrad: "eta_l is not sent to training: edge workers use the task's learning_rate",
  FedAdam: "eta_l is not sent to training: edge workers use the task's learning_rate",
  FedYogi: "eta_l is not sent to training: edge workers use the task's learning_rate",
};

export interface PlatformStrategySpec extends StrategySpec {
  /** Whether a task may choose it here. */
  available: boolean;
  /** How it runs differently here, or why it is not available. */
  limitation: string | null;
}

/** The registry's strategies as tasks here use them, for `GET /strategies`. */
export function platformStrategies(): PlatformStrategySpec[] {
  return listStrategies().map((s) => ({
    ...s,
    parameters: s.parameters.filter((p) => !NOT_USED_HERE.has(p.name)).map(asTaskParameter),
    available: !UNAVAILABLE[s.name],
    limitation: UNAVAILABLE[s.name] ? `not available: ${UNAVAILABLE[s.name]}` : (LIMITATIONS[s.name] ?? null),
  }));
}

/** The sampling parameters take the task's defaults, which differ from Flower's (one worker may train). */
function asTaskParameter(p: ParameterSpec): ParameterSpec {
  if (p.name === 'min_fit_clients' || p.name === 'fraction_fit') {
    return { ...p, default: DEFAULT_FL_SETTINGS[p.name], description: `${p.description} The same as the task's top-level ${p.name}; give it in either place.` };
  }
  return p;
}

export interface TaskStrategyInput {
  strategy?: string;
  strategy_params?: Record<string, unknown>;
  min_fit_clients?: number;
  fraction_fit?: number;
}

export interface TaskStrategy {
  /** The registry's spelling, except the legacy 'fedavg', kept as written. */
  strategy: string;
  /** Every parameter the strategy runs with, defaults applied. */
  strategy_params: Record<string, number>;
  min_fit_clients: number;
  fraction_fit: number;
}

/**
 * A task's strategy and its parameters, checked against the registry of
 * libs/aggregation. Throws StrategyParameterError naming the strategy or the
 * parameter that cannot be used.
 */
export function resolveTaskStrategy(input: TaskStrategyInput): TaskStrategy {
  const asked = input.strategy ?? LEGACY_STRATEGY;
  const name = strategySpec(asked).name;
  if (UNAVAILABLE[name]) throw new StrategyParameterError(name, null, `is not available here: ${UNAVAILABLE[name]}`);
  const given = { ...(input.strategy_params ?? {}) };
  for (const key of Object.keys(given)) {
    if (NOT_USED_HERE.has(key)) throw new StrategyParameterError(name, key, 'is not used here: every online edge worker evaluates each round');
  }
  const sampling = {} as Record<(typeof TASK_SAMPLING)[number], number>;
  for (const key of TASK_SAMPLING) {
    const top = input[key];
    const inner = given[key];
    if (top !== undefined && inner !== undefined && top !== inner) {
      throw new StrategyParameterError(name, key, `is given twice with different values: ${top} at the top level, ${JSON.stringify(inner)} in strategy_params`);
    }
    given[key] = top ?? inner ?? DEFAULT_FL_SETTINGS[key];
  }
  const resolved = resolveStrategyParameters(name, given);
  const strategy_params: Record<string, number> = {};
  for (const [key, value] of Object.entries(resolved.parameters)) if (!NOT_USED_HERE.has(key)) strategy_params[key] = value;
  for (const key of TASK_SAMPLING) sampling[key] = strategy_params[key];
  return { strategy: asked === LEGACY_STRATEGY ? LEGACY_STRATEGY : name, strategy_params, ...sampling };
}
