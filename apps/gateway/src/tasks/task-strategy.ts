import { listStrategies, ParameterSpec, resolveStrategyParameters, StrategyParameterError, strategySpec, StrategySpec } from '@fl/aggregation';
import { DEFAULT_FL_SETTINGS, LEGACY_STRATEGY } from '@fl/contracts';

/**
 * Strategy parameters that are also top-level fields of a task: one value
 * serves both, given in either place. Flower's sampling parameters, and the
 * FedOpt family's client learning rate `eta_l`, which is the task's
 * `learning_rate` (in Flower eta_l is what the workers' optimiser would be
 * told; here they are told the task's learning_rate, so the two are one).
 */
const TASK_FIELDS = { min_fit_clients: 'min_fit_clients', fraction_fit: 'fraction_fit', eta_l: 'learning_rate' } as const;
type TaskField = (typeof TASK_FIELDS)[keyof typeof TASK_FIELDS];
const isTaskField = (parameter: string): parameter is keyof typeof TASK_FIELDS => Object.hasOwn(TASK_FIELDS, parameter);

/**
 * Flower's evaluation and availability thresholds take 1 here when a task gives
 * none (Flower's default is 2), as min_fit_clients does: one site may run a
 * task. fraction_evaluate keeps Flower's 1.0: every online worker evaluates.
 */
const TASK_DEFAULTS: Record<string, number> = { min_evaluate_clients: 1, min_available_clients: 1 };

/** Strategies the edge workers cannot serve, and why (none at present). */
const UNAVAILABLE: Record<string, string> = {};

/** What runs differently here from the published strategy. */
const LIMITATIONS: Record<string, string> = {};

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
    parameters: s.parameters.map(asTaskParameter),
    available: !UNAVAILABLE[s.name],
    limitation: UNAVAILABLE[s.name] ? `not available: ${UNAVAILABLE[s.name]}` : (LIMITATIONS[s.name] ?? null),
  }));
}

/** Parameters that are task fields take the task's defaults, which differ from Flower's (one worker may train, learning rate 0.3). */
function asTaskParameter(p: ParameterSpec): ParameterSpec {
  if (p.name === 'fraction_evaluate') {
    return { ...p, description: 'Fraction of the available workers asked to evaluate each round; at least min_evaluate_clients always evaluate (a round\'s figures are an evaluation), so 0 means exactly min_evaluate_clients.' };
  }
  if (p.name in TASK_DEFAULTS) return { ...p, default: TASK_DEFAULTS[p.name], description: `${p.description} 1 when not given (Flower: 2), so that one site may run a task.` };
  if (!isTaskField(p.name)) return p;
  const field = TASK_FIELDS[p.name];
  return { ...p, default: DEFAULT_FL_SETTINGS[field], description: `${p.description} The same as the task's top-level ${field}; give it in either place.` };
}

export interface TaskStrategyInput {
  strategy?: string;
  strategy_params?: Record<string, unknown>;
  min_fit_clients?: number;
  fraction_fit?: number;
  learning_rate?: number;
}

export interface TaskStrategy {
  /** The registry's spelling, except the legacy 'fedavg', kept as written. */
  strategy: string;
  /** Every parameter the strategy runs with, defaults applied. */
  strategy_params: Record<string, number>;
  min_fit_clients: number;
  fraction_fit: number;
  /** The workers' learning rate: the task's, or the FedOpt family's eta_l, which is the same. */
  learning_rate: number;
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
  const given = { ...TASK_DEFAULTS, ...(input.strategy_params ?? {}) };
  const takes = new Set(strategySpec(name).parameters.map((p) => p.name));
  const fields = {} as Record<TaskField, number>;
  for (const [key, field] of Object.entries(TASK_FIELDS) as [keyof typeof TASK_FIELDS, TaskField][]) {
    const top = input[field];
    const inner = given[key];
    if (top !== undefined && inner !== undefined && top !== inner) {
      const where = key === field ? 'at the top level' : `as the task's ${field}`;
      throw new StrategyParameterError(name, key, `is given twice with different values: ${top} ${where}, ${JSON.stringify(inner)} in strategy_params`);
    }
    fields[field] = (top ?? inner ?? DEFAULT_FL_SETTINGS[field]) as number;
    // A strategy without the parameter (eta_l outside the FedOpt family) is left to refuse it by name, if given.
    if (takes.has(key)) given[key] = fields[field];
  }
  const resolved = resolveStrategyParameters(name, given);
  const strategy_params: Record<string, number> = {};
  for (const [key, value] of Object.entries(resolved.parameters)) strategy_params[key] = value;
  return { strategy: asked === LEGACY_STRATEGY ? LEGACY_STRATEGY : name, strategy_params, ...fields };
}
