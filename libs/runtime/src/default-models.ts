import { getUseCase } from '@fl/datasets';
import { buildClassifierPackage, modelPackageFiles } from '@fl/models';
import { ModelRegistry, ModelVersionInfo, publishModelPackage } from '@fl/registry';

/**
 * Publishes the default model of a use case under the use case's name: a
 * softmax classifier (an MLP when the use case asks for hidden layers) with
 * the use case's feature normalisation built into its graphs. The package is
 * deterministic, so publishing it again returns the existing version.
 */
export async function publishDefaultModel(registry: ModelRegistry, useCase: string): Promise<{ version: ModelVersionInfo; created: boolean }> {
  const uc = getUseCase(useCase);
  const pkg = buildClassifierPackage({
    name: uc.name,
    featureNames: uc.features.map((f) => f.name),
    classes: uc.label.classes,
    hidden: uc.model.hidden,
    normalization: { mean: uc.normalization.mean, std: uc.normalization.std },
    seed: 0,
    defaults: uc.model.defaults,
  });
  await registry.createModel(uc.name, { description: `default model of use case '${uc.name}': ${uc.description}`, tags: { use_case: uc.name } });
  return publishModelPackage(registry, uc.name, modelPackageFiles(pkg), { use_case: uc.name });
}
