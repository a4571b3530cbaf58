/** @jest-environment ./libs/models/test/ort-environment.js */
import { join } from 'node:path';
import { bundledDataDir, getUseCase, loadLabeledCsv, splitTrainTest } from '@fl/datasets';
import { buildClassifierPackage, featureSums, modelPackageFiles, needsFederatedStatistics, OnnxClassifierRunner, standardization, withStandardization } from '@fl/models';
import { defaultModelPackage } from './default-models';

const packageOf = (useCase: string) => defaultModelPackage(getUseCase(useCase));

describe('default models of the shipped use cases', () => {
  it('iris from its file is byte for byte the package of the former built-in definition', () => {
    const former = buildClassifierPackage({
      name: 'iris',
      featureNames: ['sepal-length', 'sepal-width', 'petal-length', 'petal-width'],
      classes: ['Iris-setosa', 'Iris-versicolor', 'Iris-virginica'],
      hidden: [],
      normalization: { mean: [5.84, 3.05, 3.76, 1.2], std: [0.83, 0.43, 1.76, 0.76] },
      seed: 0,
      defaults: { learning_rate: 0.3, batch_size: 8, local_epochs: 10 },
    });
    const a = modelPackageFiles(packageOf('iris'));
    const b = modelPackageFiles(former);
    expect(Object.keys(a).sort()).toEqual(Object.keys(b).sort());
    for (const file of Object.keys(b)) expect(a[file].equals(b[file])).toBe(true);
  });

  it.each([
    ['breast_cancer', 2, 0.93],
    ['digits', 10, 0.93],
  ])('%s: the default model trained centrally with its defaults classifies held-out rows', async (name, classes, minAccuracy) => {
    const uc = getUseCase(name);
    const data = loadLabeledCsv(join(bundledDataDir(), `${name}.csv`), uc);
    const { train, test } = splitTrainTest(data, 0.2, 1);
    let pkg = packageOf(name);
    expect(pkg.manifest.classes).toHaveLength(classes);
    const federated = pkg.manifest.normalization.statistics;
    expect(needsFederatedStatistics(pkg)).toBe(name === 'breast_cancer');
    if (federated) {
      // What a task does before round 1, here with one site holding every training row.
      pkg = withStandardization(pkg, { ...standardization(featureSums(train.x, train.n, train.features), federated.standardize), examples: train.n, sites: 1 }, 1) as typeof pkg;
    }
    const runner = await OnnxClassifierRunner.create(pkg);
    try {
      const d = uc.model.defaults;
      const trained = await runner.train(pkg.initialWeights, train, { epochs: d.local_epochs, batchSize: d.batch_size, learningRate: d.learning_rate, seed: 1 });
      const result = await runner.evaluate(trained.weights, test);
      expect(result.examples).toBe(test.n);
      expect(result.accuracy).toBeGreaterThan(minAccuracy);
    } finally {
      await runner.release();
    }
  });
});
