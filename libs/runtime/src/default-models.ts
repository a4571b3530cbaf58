import { DataSource } from 'typeorm';
import { findUseCase, modelInputs, UseCaseDefinition } from '@fl/datasets';
import { buildClassifierPackage, ClassifierPackage, modelPackageFiles } from '@fl/models';
import { ModelRegistry, ModelVersionInfo, publishModelPackage } from '@fl/registry';
import { readStoredUseCase, UnknownStoredUseCaseError } from './stored-use-cases';

/**
 * Publishes the default model of a use case under the use case's name: a
 * softmax classifier (an MLP when the use case asks for hidden layers) with
 * the use case's feature normalisation built into its graphs. The package is
 * deterministic, so publishing it again returns the existing version.
 *
 * The use case is a file one (shipped or USE_CASES_DIR) or one stored at the
 * gateway (`POST /use-cases`), read from `dataSource` (the platform's
 * database; without it only file use cases are found).
 */
export async function publishDefaultModel(
  registry: ModelRegistry,
  useCase: string,
  opts: { dataSource?: DataSource } = {},
): Promise<{ version: ModelVersionInfo; created: boolean }> {
  const uc = findUseCase(useCase) ?? (await storedUseCase(useCase, opts.dataSource));
  const pkg = defaultModelPackage(uc);
  await registry.createModel(uc.name, { description: `default model of use case '${uc.name}': ${uc.description}`, tags: { use_case: uc.name } });
  return publishModelPackage(registry, uc.name, modelPackageFiles(pkg), { use_case: uc.name });
}

/**
 * The default model of a use case: deterministic (seed 0), with the use
 * case's standardisation in its graphs, or placeholders for the statistics a
 * task computes federatedly.
 */
export function defaultModelPackage(uc: UseCaseDefinition): ClassifierPackage {
  const inputs = modelInputs(uc);
  return buildClassifierPackage({
    name: uc.name,
    featureNames: inputs.names,
    classes: uc.label.classes,
    hidden: uc.model.hidden,
    normalization: {
      mean: inputs.mean,
      std: inputs.std,
      // computed from the sites' rows at the start of each task
      ...(inputs.federated ? { statistics: { method: 'federated' as const, standardize: inputs.federated } } : {}),
    },
    seed: 0,
    defaults: uc.model.defaults,
  });
}

async function storedUseCase(name: string, ds: DataSource | undefined): Promise<UseCaseDefinition> {
  const uc = ds ? await readStoredUseCase(ds, name) : undefined;
  if (!uc) throw new UnknownStoredUseCaseError(name, ds !== undefined);
  return uc;
}

