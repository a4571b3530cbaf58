import { DEFAULT_SAMPLING, StrategyOptions } from './base-strategy';
import { SamplingParameters, Strategy } from './strategy';
import { Bulyan, bulyanMinimumUpdates } from './strategies/bulyan.strategy';
import { FedAdagrad } from './strategies/fedadagrad.strategy';
import { FedAdam } from './strategies/fedadam.strategy';
import { FedAvg } from './strategies/fedavg.strategy';
import { FedAvgM } from './strategies/fedavgm.strategy';
import { FedMedian } from './strategies/fedmedian.strategy';
import { FedProx } from './strategies/fedprox.strategy';
import { FedTrimmedAvg } from './strategies/fedtrimmedavg.strategy';
import { FedYogi } from './strategies/fedyogi.strategy';
import { Krum, krumMinimumUpdates } from './strategies/krum.strategy';
import { QFedAvg } from './strategies/qfedavg.strategy';

/** One hyper-parameter as `GET /strategies` lists it. Without a default the parameter is required. */
export interface ParameterSpec {
  name: string;
  type: 'number' | 'integer';
  description: string;
  default?: number;
  minimum?: number;
  exclusiveMinimum?: number;
  maximum?: number;
  exclusiveMaximum?: number;
}

export interface StrategySpec {
  name: string;
  description: string;
  reference: string;
  /** Folds updates in as they arrive (memory independent of the number of workers). */
  streaming: boolean;
  /** The server step is applied to an example-weighted average, so differential privacy can wrap it. */
  linear: boolean;
  parameters: ParameterSpec[];
}

interface RegistryEntry extends StrategySpec {
  /** Checks between parameters; returns [parameter, problem] or null. */
  crossCheck?: (p: Record<string, number>) => [string, string] | null;
  create: (p: Record<string, number>, options: StrategyOptions) => Strategy;
}

/** A strategy name or parameter that cannot be used, naming it and what is wrong. */
export class StrategyParameterError extends Error {
  constructor(
    readonly strategy: string,
    readonly parameter: string | null,
    readonly problem: string,
  ) {
    super(parameter ? `strategy '${strategy}': parameter '${parameter}' ${problem}` : `strategy '${strategy}': ${problem}`);
    this.name = 'StrategyParameterError';
  }
}

const SAMPLING: ParameterSpec[] = [
  { name: 'fraction_fit', type: 'number', default: DEFAULT_SAMPLING.fraction_fit, minimum: 0, maximum: 1, description: 'Fraction of the available workers asked to train each round.' },
  { name: 'fraction_evaluate', type: 'number', default: DEFAULT_SAMPLING.fraction_evaluate, minimum: 0, maximum: 1, description: 'Fraction of the available workers asked to evaluate each round; 0 turns federated evaluation off.' },
  { name: 'min_fit_clients', type: 'integer', default: DEFAULT_SAMPLING.min_fit_clients, minimum: 1, description: 'Least number of workers that train in a round.' },
  { name: 'min_evaluate_clients', type: 'integer', default: DEFAULT_SAMPLING.min_evaluate_clients, minimum: 1, description: 'Least number of workers that evaluate in a round.' },
  { name: 'min_available_clients', type: 'integer', default: DEFAULT_SAMPLING.min_available_clients, minimum: 1, description: 'Workers that must be online before a round starts.' },
];

const fedOpt = (eta: number, etaL: number, tau: number, betas?: [number, number]): ParameterSpec[] => [
  { name: 'eta', type: 'number', default: eta, exclusiveMinimum: 0, description: 'Server-side learning rate.' },
  { name: 'eta_l', type: 'number', default: etaL, exclusiveMinimum: 0, description: 'Client-side learning rate, sent to the workers in the fit config.' },
  ...(betas
    ? ([
        { name: 'beta_1', type: 'number', default: betas[0], minimum: 0, exclusiveMaximum: 1, description: 'Momentum parameter.' },
        { name: 'beta_2', type: 'number', default: betas[1], minimum: 0, exclusiveMaximum: 1, description: 'Second moment parameter.' },
      ] as ParameterSpec[])
    : []),
  { name: 'tau', type: 'number', default: tau, exclusiveMinimum: 0, description: 'Degree of adaptability: added to sqrt(v) in the denominator.' },
];

const MALICIOUS: ParameterSpec = { name: 'num_malicious_clients', type: 'integer', default: 0, minimum: 0, description: 'Hostile or faulty workers to tolerate (f).' };

const ENTRIES: RegistryEntry[] = (
  [
  {
    name: 'FedAvg',
    description: 'Example-weighted average of the workers\' weights.',
    reference: 'McMahan et al. 2017, Communication-Efficient Learning of Deep Networks from Decentralized Data',
    streaming: true,
    linear: true,
    parameters: [],
    create: (p, o) => new FedAvg(p as never, o),
  },
  {
    name: 'FedAvgM',
    description: 'FedAvg with server-side momentum on the pseudo-gradient.',
    reference: 'Hsu et al. 2019, Measuring the Effects of Non-Identical Data Distribution for Federated Visual Classification',
    streaming: true,
    linear: true,
    parameters: [
      { name: 'server_learning_rate', type: 'number', default: 1.0, exclusiveMinimum: 0, description: 'Server-side learning rate.' },
      { name: 'server_momentum', type: 'number', default: 0.0, minimum: 0, exclusiveMaximum: 1, description: 'Server-side momentum factor; 0 turns momentum off.' },
    ],
    create: (p, o) => new FedAvgM(p as never, o),
  },
  {
    name: 'FedProx',
    description: 'FedAvg on the server; the workers add a proximal term (proximal_mu / 2) ||w - w_global||^2 to their loss.',
    reference: 'Li et al. 2020, Federated Optimization in Heterogeneous Networks',
    streaming: true,
    linear: true,
    parameters: [{ name: 'proximal_mu', type: 'number', minimum: 0, description: 'Weight of the proximal term, sent to the workers in the fit config.' }],
    create: (p, o) => new FedProx(p as never, o),
  },
  {
    name: 'FedAdagrad',
    description: 'Server-side Adagrad on the pseudo-gradient.',
    reference: 'Reddi et al. 2021, Adaptive Federated Optimization',
    streaming: true,
    linear: true,
    parameters: fedOpt(0.1, 0.1, 1e-9),
    create: (p, o) => new FedAdagrad(p as never, o),
  },
  {
    name: 'FedAdam',
    description: 'Server-side Adam on the pseudo-gradient.',
    reference: 'Reddi et al. 2021, Adaptive Federated Optimization',
    streaming: true,
    linear: true,
    parameters: fedOpt(0.1, 0.1, 1e-9, [0.9, 0.99]),
    create: (p, o) => new FedAdam(p as never, o),
  },
  {
    name: 'FedYogi',
    description: 'Server-side Yogi on the pseudo-gradient.',
    reference: 'Reddi et al. 2021, Adaptive Federated Optimization',
    streaming: true,
    linear: true,
    parameters: fedOpt(0.01, 0.0316, 1e-3, [0.9, 0.99]),
    create: (p, o) => new FedYogi(p as never, o),
  },
  {
    name: 'QFedAvg',
    description: 'Fair aggregation: workers with a higher loss weigh more (q-FFL). Workers report their loss on the received weights as the fit metric loss_before_fit.',
    reference: 'Li et al. 2020, Fair Resource Allocation in Federated Learning',
    streaming: true,
    linear: false,
    parameters: [
      { name: 'q_param', type: 'number', default: 0.2, minimum: 0, description: 'Fairness parameter q; 0 is plain averaging of the steps.' },
      { name: 'qffl_learning_rate', type: 'number', default: 0.1, exclusiveMinimum: 0, description: "The step size the server assumes the workers' updates took: its inverse estimates the Lipschitz constant L; larger values take larger steps." },
    ],
    create: (p, o) => new QFedAvg(p as never, o),
  },
  {
    name: 'FedMedian',
    description: 'Coordinate-wise median of the workers\' weights.',
    reference: 'Yin et al. 2018, Byzantine-Robust Distributed Learning: Towards Optimal Statistical Rates',
    streaming: false,
    linear: false,
    parameters: [],
    create: (p, o) => new FedMedian(p as never, o),
  },
  {
    name: 'FedTrimmedAvg',
    description: 'Coordinate-wise mean after cutting the largest and smallest values.',
    reference: 'Yin et al. 2018, Byzantine-Robust Distributed Learning: Towards Optimal Statistical Rates',
    streaming: false,
    linear: false,
    parameters: [{ name: 'beta', type: 'number', default: 0.2, minimum: 0, exclusiveMaximum: 0.5, description: 'Fraction cut at each end, per coordinate.' }],
    create: (p, o) => new FedTrimmedAvg(p as never, o),
  },
  {
    name: 'Krum',
    description: 'The update closest to its n - f - 2 nearest others (Krum), or the average of the m best (Multi-Krum, num_clients_to_keep = m > 0).',
    reference: 'Blanchard et al. 2017, Machine Learning with Adversaries: Byzantine Tolerant Gradient Descent',
    streaming: false,
    linear: false,
    parameters: [MALICIOUS, { name: 'num_clients_to_keep', type: 'integer', default: 0, minimum: 0, description: 'Multi-Krum: how many best-scored updates to average; 0 is Krum.' }],
    crossCheck: (p) =>
      p.min_fit_clients < krumMinimumUpdates(p.num_malicious_clients)
        ? ['min_fit_clients', `must be at least ${krumMinimumUpdates(p.num_malicious_clients)} (2 * num_malicious_clients + 3) for Krum, got ${p.min_fit_clients}`]
        : p.num_clients_to_keep > p.min_fit_clients
          ? ['num_clients_to_keep', `must not exceed min_fit_clients (${p.min_fit_clients}), got ${p.num_clients_to_keep}`]
          : null,
    create: (p, o) => new Krum(p as never, o),
  },
  {
    name: 'Bulyan',
    description: 'Krum picks n - 2f updates one by one; per coordinate, the n - 4f picked values nearest the median are averaged.',
    reference: 'El Mhamdi et al. 2018, The Hidden Vulnerability of Distributed Learning in Byzantium',
    streaming: false,
    linear: false,
    parameters: [MALICIOUS],
    crossCheck: (p) =>
      p.min_fit_clients < bulyanMinimumUpdates(p.num_malicious_clients)
        ? ['min_fit_clients', `must be at least ${bulyanMinimumUpdates(p.num_malicious_clients)} (4 * num_malicious_clients + 3) for Bulyan, got ${p.min_fit_clients}`]
        : null,
    create: (p, o) => new Bulyan(p as never, o),
  },
  ] as RegistryEntry[]
).map((e) => ({ ...e, parameters: [...e.parameters, ...SAMPLING] }));

function entry(name: string): RegistryEntry {
  const found = ENTRIES.find((e) => e.name === name) ?? ENTRIES.find((e) => e.name.toLowerCase() === String(name).toLowerCase());
  if (!found) throw new StrategyParameterError(String(name), null, `is not a known strategy; choose from ${ENTRIES.map((e) => e.name).join(', ')}`);
  return found;
}

/** Every strategy with its parameters and defaults, for `GET /strategies`. */
export function listStrategies(): StrategySpec[] {
  return ENTRIES.map(({ name, description, reference, streaming, linear, parameters }) => ({
    name,
    description,
    reference,
    streaming,
    linear,
    parameters: parameters.map((p) => ({ ...p })),
  }));
}

export function strategySpec(name: string): StrategySpec {
  return listStrategies().find((s) => s.name === entry(name).name)!;
}

/** Checks one value against its spec; returns the problem or null. */
export function parameterProblem(spec: ParameterSpec, value: unknown): string | null {
  if (typeof value !== 'number' || !Number.isFinite(value)) return `must be a finite number, got ${JSON.stringify(value) ?? String(value)}`;
  if (spec.type === 'integer' && !Number.isInteger(value)) return `must be an integer, got ${value}`;
  const range = describeRange(spec);
  if (spec.minimum !== undefined && value < spec.minimum) return `must be ${range}, got ${value}`;
  if (spec.exclusiveMinimum !== undefined && value <= spec.exclusiveMinimum) return `must be ${range}, got ${value}`;
  if (spec.maximum !== undefined && value > spec.maximum) return `must be ${range}, got ${value}`;
  if (spec.exclusiveMaximum !== undefined && value >= spec.exclusiveMaximum) return `must be ${range}, got ${value}`;
  return null;
}

function describeRange(s: ParameterSpec): string {
  const lo = s.minimum !== undefined ? `>= ${s.minimum}` : s.exclusiveMinimum !== undefined ? `> ${s.exclusiveMinimum}` : '';
  const hi = s.maximum !== undefined ? `<= ${s.maximum}` : s.exclusiveMaximum !== undefined ? `< ${s.exclusiveMaximum}` : '';
  return [lo, hi].filter(Boolean).join(' and ') || 'a number';
}

/**
 * The full parameter set of a strategy: defaults applied, every value and the
 * relations between them checked. Throws StrategyParameterError naming the
 * first unknown, missing or bad parameter.
 */
export function resolveStrategyParameters(name: string, given: Record<string, unknown> = {}): { name: string; parameters: Record<string, number> } {
  const e = entry(name);
  const known = new Set(e.parameters.map((p) => p.name));
  for (const key of Object.keys(given)) {
    if (!known.has(key)) throw new StrategyParameterError(e.name, key, `is not a parameter of ${e.name}; its parameters are ${[...known].join(', ')}`);
  }
  const out: Record<string, number> = {};
  for (const spec of e.parameters) {
    const value = given[spec.name] ?? spec.default;
    if (value === undefined) throw new StrategyParameterError(e.name, spec.name, 'is required');
    const problem = parameterProblem(spec, value);
    if (problem) throw new StrategyParameterError(e.name, spec.name, problem);
    out[spec.name] = value as number;
  }
  const cross = e.crossCheck?.(out);
  if (cross) throw new StrategyParameterError(e.name, cross[0], cross[1]);
  return { name: e.name, parameters: out };
}

/** A validated strategy instance (one per task: FedAvgM and the FedOpt family keep state across rounds). */
export function createStrategy(name: string, given: Record<string, unknown> = {}, options: StrategyOptions = {}): Strategy {
  const { name: canonical, parameters } = resolveStrategyParameters(name, given);
  return entry(canonical).create(parameters as Record<string, number> & SamplingParameters, options);
}
