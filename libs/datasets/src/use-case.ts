/**
 * A use case: what a site's data looks like and how the model sees it.
 * Data, not code: adding one is adding a definition (issue "new use cases
 * need no code" turns this into files validated by a schema).
 */
export interface UseCaseDefinition {
  name: string;
  description: string;
  features: { name: string; type: 'number' }[];
  label: { column: string; classes: string[] };
  /**
   * Feature standardisation (x - mean) / std, baked into the model's graphs so
   * that the registered model takes raw measurements.
   */
  normalization: { mean: number[]; std: number[]; source: string };
  model: { hidden: number[]; defaults: { learning_rate: number; batch_size: number; local_epochs: number } };
}

export const IRIS: UseCaseDefinition = {
  name: 'iris',
  description: "Fisher's iris: three species from four flower measurements in cm",
  features: [
    { name: 'sepal-length', type: 'number' },
    { name: 'sepal-width', type: 'number' },
    { name: 'petal-length', type: 'number' },
    { name: 'petal-width', type: 'number' },
  ],
  label: { column: 'class', classes: ['Iris-setosa', 'Iris-versicolor', 'Iris-virginica'] },
  normalization: {
    mean: [5.84, 3.05, 3.76, 1.2],
    std: [0.83, 0.43, 1.76, 0.76],
    source: "summary statistics published with the data set's description (UCI iris.names), not computed from any site's rows",
  },
  model: { hidden: [], defaults: { learning_rate: 0.3, batch_size: 8, local_epochs: 10 } },
};

const BUILT_IN: ReadonlyMap<string, UseCaseDefinition> = new Map([[IRIS.name, IRIS]]);

export class UnknownUseCaseError extends Error {
  constructor(readonly useCase: string) {
    super(`unknown use case '${useCase}' (known: ${[...BUILT_IN.keys()].join(', ')})`);
    this.name = 'UnknownUseCaseError';
  }
}

export function listUseCases(): UseCaseDefinition[] {
  return [...BUILT_IN.values()];
}

export function findUseCase(name: string): UseCaseDefinition | undefined {
  return BUILT_IN.get(name);
}

export function getUseCase(name: string): UseCaseDefinition {
  const uc = BUILT_IN.get(name);
  if (!uc) throw new UnknownUseCaseError(name);
  return uc;
}
