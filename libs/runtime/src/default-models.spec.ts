/** @jest-environment ./libs/models/test/ort-environment.js */
import { join } from 'node:path';
import { bundledDataDir, getUseCase, loadLabeledCsv, modelInputs, splitTrainTest } from '@fl/datasets';
import { buildClassifierPackage, modelPackageFiles, OnnxClassifierRunner } from '@fl/models';

function packageOf(useCase: string) {
  const uc = getUseCase(useCase);
  const inputs = modelInputs(uc);
  return buildClassifierPackage({
    name: uc.name,
    featureNames: inputs.names,
    classes: uc.label.classes,
    hidden: uc.model.hidden,
    normalization: { mean: inputs.mean, std: inputs.std },
    seed: 0,
    defaults: uc.model.defaults,
  });
}

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
    const pkg = packageOf(name);
    expect(pkg.manifest.classes).toHaveLength(classes);
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
