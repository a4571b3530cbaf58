export interface NumberFeature {
  name: string;
  type: 'number';
}

/** A column holding one of a few listed values; the model sees it one-hot, one input per value. */
export interface CategoricalFeature {
  name: string;
  type: 'categorical';
  values: string[];
}

export type FeatureDefinition = NumberFeature | CategoricalFeature;

export const MISSING_STRATEGIES = ['reject', 'drop_row', 'mean', 'constant'] as const;
export type MissingStrategy = (typeof MISSING_STRATEGIES)[number];

/**
 * What a site does with a missing cell (one of `markers`): `reject` refuses the
 * site's data for the use case, `drop_row` leaves the row out, `mean` fills a
 * number column with the mean of the file's other values in that column,
 * `constant` fills it with `value`. A missing label or categorical value can
 * only be rejected or dropped.
 */
export interface MissingValues {
  strategy: MissingStrategy;
  value?: number;
  markers: string[];
}

/**
 * Feature standardisation (x - mean) / std, baked into the model's graphs so
 * that the registered model takes raw measurements. One mean and std per
 * number feature, in order; one-hot inputs of categorical features are not
 * scaled. The statistics are either fixed in the definition, or computed
 * federatedly at the start of each task (`statistics: 'federated'`: every
 * site sends counts, sums and sums of squares of its training rows, never
 * rows) and shipped in the trained model's manifest.
 */
export type Normalization =
  | { method: 'standardize'; mean: number[]; std: number[]; source?: string }
  | { method: 'standardize'; statistics: 'federated' }
  | { method: 'none' };

/** Whether a use case's standardisation statistics are computed federatedly at the start of a task. */
export function hasFederatedStatistics(n: Normalization): n is { method: 'standardize'; statistics: 'federated' } {
  return n.method === 'standardize' && 'statistics' in n && n.statistics === 'federated';
}

export interface TrainingDefaults {
  learning_rate: number;
  batch_size: number;
  local_epochs: number;
}

/**
 * A use case: what a site's data looks like and how the model sees it. Data,
 * not code: each is a JSON file validated by `parseUseCase` (see
 * libs/datasets/use-cases/ for the shipped ones).
 */
export interface UseCaseDefinition {
  name: string;
  description: string;
  features: FeatureDefinition[];
  label: { column: string; classes: string[] };
  missing_values: MissingValues;
  normalization: Normalization;
  model: { hidden: number[]; defaults: TrainingDefaults };
}

export class UnknownUseCaseError extends Error {
  constructor(
    readonly useCase: string,
    known: string[],
  ) {
    super(`unknown use case '${useCase}' (known: ${known.join(', ')})`);
    this.name = 'UnknownUseCaseError';
  }
}
