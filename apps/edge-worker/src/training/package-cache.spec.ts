/** @jest-environment ./libs/models/test/ort-environment.js */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildClassifierPackage, encodePackageBundle, importOnnxModel, modelPackageFiles, ModelPackage, OnnxClassifierRunner, OnnxModelRunner, sha256Hex } from '@fl/models';
import { EdgeWorkerConfig } from '../config';
import { PackageCache } from './package-cache';

const IRIS_INPUTS = ['sepal-length', 'sepal-width', 'petal-length', 'petal-width'];
const IRIS_CLASSES = ['Iris-setosa', 'Iris-versicolor', 'Iris-virginica'];
const NORMALIZATION = { mean: [5.84, 3.05, 3.76, 1.2], std: [0.83, 0.43, 1.76, 0.76] };

function bundle(pkg: ModelPackage): { sha: string; bytes: Buffer } {
  const bytes = encodePackageBundle(modelPackageFiles(pkg));
  return { sha: sha256Hex(bytes), bytes };
}

describe('PackageCache', () => {
  const cache = new PackageCache({ ORT_THREADS: 1 } as EdgeWorkerConfig);
  afterAll(() => cache.onApplicationShutdown());

  it('runs the built-in classifier and an imported model, each with its own runner', async () => {
    const classifier = bundle(
      buildClassifierPackage({ name: 'iris', featureNames: IRIS_INPUTS, classes: IRIS_CLASSES, hidden: [], normalization: NORMALIZATION, seed: 0 }),
    );
    const onnx = readFileSync(join(__dirname, '..', '..', '..', '..', 'libs', 'models', 'test', 'fixtures', 'torch_mlp.onnx'));
    const importedPkg = importOnnxModel(onnx, {
      name: 'torch_mlp_iris',
      useCase: 'iris',
      featureNames: IRIS_INPUTS,
      classes: IRIS_CLASSES,
      normalization: NORMALIZATION,
      loss: 'softmax_cross_entropy',
      optimizer: 'adam',
    });
    const imported = bundle(importedPkg);
    await cache.add(classifier.sha, classifier.bytes);
    await cache.add(imported.sha, imported.bytes);
    expect(cache.get(classifier.sha)).toBeInstanceOf(OnnxClassifierRunner);
    const runner = cache.get(imported.sha);
    expect(runner).toBeInstanceOf(OnnxModelRunner);

    const x = Float32Array.of(5.1, 3.5, 1.4, 0.2, 6.7, 3.0, 5.2, 2.3, 5.9, 2.8, 4.3, 1.3);
    const data = { x, labels: Int32Array.of(0, 2, 1), n: 3 };
    const out = await runner.train(importedPkg.initialWeights, data, { epochs: 2, batchSize: 2, learningRate: 0.01, seed: 1 });
    expect(out.steps).toBe(4);
    expect([...out.weights.keys()]).toEqual(importedPkg.manifest.parameters.map((p) => p.name));
  });

  it('refuses a bundle that does not match its hash, and a package it never received', async () => {
    await expect(cache.add('0'.repeat(64), Buffer.from('x'))).rejects.toThrow(/does not match its sha256/);
    expect(() => cache.get('f'.repeat(64))).toThrow(/was not received by this worker/);
  });
});
