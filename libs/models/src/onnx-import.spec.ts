/** @jest-environment ./libs/models/test/ort-environment.js */
import { UnsupportedModelError } from './autodiff';
import { decodePackageBundle, encodePackageBundle } from './bundle';
import { decodeModel, floatTensor, OnnxGraphBuilder } from './onnx';
import { ImportedModelManifest, isImportedManifest, validateManifest } from './manifest';
import { ModelImportError, importOnnxModel, NORMALIZATION_MEAN } from './onnx-import';
import { modelPackageFiles, modelPackageFilesYielding, readModelPackage } from './package-files';
import { smallPackage } from './test/fixtures';
import { batchNormMlp, DIGITS_SPEC, IRIS_SPEC, torchCnn, torchMlp } from './test/imported';

describe('importOnnxModel', () => {
  it("turns torch_mlp.onnx into an iris package: the graph's initializers are the weights, normalisation in front", () => {
    const onnx = torchMlp();
    const pkg = importOnnxModel(onnx, IRIS_SPEC);
    const m = pkg.manifest as ImportedModelManifest;
    expect(m).toMatchObject({
      format: 'fl-model-package/2',
      name: 'torch_mlp_iris',
      inputs: { name: 'x', features: IRIS_SPEC.featureNames, shape: [4] },
      classes: IRIS_SPEC.classes,
      normalization: IRIS_SPEC.normalization,
      prediction: { name: 'logits', width: 3 },
      loss: 'softmax_cross_entropy',
      optimizer: 'sgd',
      state: [],
      hyper_parameters: [{ name: 'lr', shape: [], default: [expect.closeTo(0.01, 6)] }],
      defaults: { learning_rate: 0.01, batch_size: 32, local_epochs: 1 },
      graphs: { inference: 'inference.onnx', train_step: 'train_step.onnx', train_step_fedprox: 'train_step_fedprox.onnx' },
      weights: 'weights.safetensors',
      source: { file: 'torch_mlp.onnx', opset: 13 },
    });
    expect(m.optimizer_state).toBeUndefined();
    expect(m.parameters.map((p) => `${p.name} [${p.shape.join(',')}]`)).toEqual([
      '0.weight [16,4]',
      '0.bias [16]',
      '2.weight [8,16]',
      '2.bias [8]',
      '4.weight [3,8]',
      '4.bias [3]',
    ]);
    const initializers = new Map(decodeModel(onnx).graph.initializers.map((t) => [t.name, t]));
    for (const p of m.parameters) expect(pkg.initialWeights.get(p.name)!.data).toEqual(initializers.get(p.name)!.data);
    // the normalisation is a constant of both graphs, not a trained weight
    expect(pkg.initialWeights.has(NORMALIZATION_MEAN)).toBe(false);
    const inference = decodeModel(pkg.inferenceOnnx).graph;
    expect(inference.initializers.find((t) => t.name === NORMALIZATION_MEAN)!.data).toEqual(Float32Array.from(IRIS_SPEC.normalization!.mean));
    expect(inference.inputs.map((i) => i.name)).toEqual([...m.parameters.map((p) => p.name), 'x']);
    // FedProx's train step: the plain one's inputs, then mu and the round's global weights
    const plainInputs = decodeModel(pkg.trainStepOnnx).graph.inputs.map((i) => i.name);
    expect(decodeModel(pkg.trainStepFedProxOnnx!).graph.inputs.map((i) => i.name)).toEqual([...plainInputs, 'mu', ...m.parameters.map((p) => `${p.name}.global`)]);
    expect(plainInputs).not.toContain('mu');
  });

  it('round-trips through the package files and a bundle, and keeps the optimizer state of adam', async () => {
    const pkg = importOnnxModel(torchMlp(), { ...IRIS_SPEC, optimizer: 'adam', defaults: { learning_rate: 0.02, local_epochs: 3 } });
    const m = pkg.manifest as ImportedModelManifest;
    expect(m.optimizer).toBe('adam');
    expect(m.optimizer_state).toBe('optimizer_state.safetensors');
    expect(m.defaults).toEqual({ learning_rate: 0.02, batch_size: 32, local_epochs: 3 });
    expect(m.state.filter((s) => s.kind === 'optimizer').map((s) => s.name)).toEqual([
      ...m.parameters.flatMap((p) => [`${p.name}.adam_m`, `${p.name}.adam_v`]),
      'optimizer.step',
    ]);
    expect(m.hyper_parameters.map((h) => h.name)).toEqual(['lr', 'beta1', 'beta2', 'epsilon']);
    const files = modelPackageFiles(pkg);
    expect(Object.keys(files).sort()).toEqual(['inference.onnx', 'manifest.json', 'optimizer_state.safetensors', 'train_step.onnx', 'train_step_fedprox.onnx', 'weights.safetensors']);
    // Encoded a slice at a time (a large model's): the same files, in the same order.
    const yielded = await modelPackageFilesYielding(pkg);
    expect(Object.keys(yielded)).toEqual(Object.keys(files));
    for (const [path, data] of Object.entries(files)) expect(yielded[path].equals(data)).toBe(true);
    const back = readModelPackage(decodePackageBundle(encodePackageBundle(files)));
    expect(back.manifest).toEqual(m);
    expect([...back.initialWeights.keys()].sort()).toEqual(m.parameters.map((p) => p.name).sort());
    for (const [k, t] of pkg.initialWeights) expect(back.initialWeights.get(k)!.data).toEqual(t.data);
    expect(back.initialState!.size).toBe(m.parameters.length * 2 + 1);
    expect([...back.initialState!.values()].every((t) => t.data.every((v) => v === 0))).toBe(true);
    expect(back.trainStepOnnx.equals(pkg.trainStepOnnx)).toBe(true);
    expect(back.trainStepFedProxOnnx!.equals(pkg.trainStepFedProxOnnx!)).toBe(true);
    // a package imported before the FedProx step existed still reads
    const { train_step_fedprox: _, ...graphs } = m.graphs;
    const older: Record<string, Buffer> = { ...files, 'manifest.json': Buffer.from(JSON.stringify({ ...m, graphs })) };
    delete older['train_step_fedprox.onnx'];
    expect(readModelPackage(older).trainStepFedProxOnnx).toBeUndefined();
  });

  it('imports torch_cnn.onnx for 8x8 digit images: 64 pixel columns reshaped to [1, 8, 8]', () => {
    const pkg = importOnnxModel(torchCnn(), DIGITS_SPEC);
    const m = pkg.manifest as ImportedModelManifest;
    expect(m.inputs.shape).toEqual([1, 8, 8]);
    expect(m.prediction).toEqual({ name: 'logits', width: 10 });
    const inference = decodeModel(pkg.inferenceOnnx).graph;
    expect(inference.initializers.find((t) => t.name === NORMALIZATION_MEAN)!.dims).toEqual([1, 8, 8]);
  });

  it('carries batch-norm running statistics as state, exchanged in the weights file', () => {
    const pkg = importOnnxModel(batchNormMlp(), { ...IRIS_SPEC, optimizer: 'sgd_momentum' });
    const m = pkg.manifest as ImportedModelManifest;
    expect(m.state.filter((s) => s.kind === 'batch_norm').map((s) => s.name)).toEqual(['bn.running_mean', 'bn.running_var']);
    expect([...pkg.initialWeights.keys()]).toEqual([...m.parameters.map((p) => p.name), 'bn.running_mean', 'bn.running_var']);
    expect(pkg.initialWeights.get('bn.running_var')!.data).toEqual(new Float32Array(6).fill(1));
    expect([...pkg.initialState!.keys()]).toEqual(m.parameters.map((p) => `${p.name}.momentum`));
    const back = readModelPackage(modelPackageFiles(pkg));
    expect(back.initialWeights.get('bn.running_mean')!.shape).toEqual([6]);
  });

  it('without normalisation the graph takes the features as they are', () => {
    const pkg = importOnnxModel(torchMlp(), { ...IRIS_SPEC, normalization: null });
    expect((pkg.manifest as ImportedModelManifest).normalization).toBeNull();
    expect(decodeModel(pkg.inferenceOnnx).graph.initializers.some((t) => t.name === NORMALIZATION_MEAN)).toBe(false);
  });

  it('refuses a graph whose input width is not the use case\'s number of inputs, naming both', () => {
    expect(() => importOnnxModel(torchCnn(), { ...IRIS_SPEC })).toThrow(ModelImportError);
    expect(() => importOnnxModel(torchCnn(), { ...IRIS_SPEC })).toThrow(
      `model import: the graph's input "x" is [N, 1, 8, 8], 64 values per example, but use case 'iris' has 4 model inputs (sepal-length, sepal-width, petal-length, petal-width)`,
    );
  });

  it("refuses a graph whose output width is not the use case's number of classes", () => {
    expect(() => importOnnxModel(torchMlp(), { ...IRIS_SPEC, classes: ['a', 'b'] })).toThrow(
      `model import: the graph's output "logits" has 3 values per example, but use case 'iris' has 2 classes (a, b)`,
    );
    expect(() => importOnnxModel(torchMlp(), { ...IRIS_SPEC, classes: ['a', 'b', 'c', 'd'] })).toThrow(/has 4 classes/);
  });

  it('refuses an op outside the supported set, naming the op and the node', () => {
    const g = new OnnxGraphBuilder('gelu');
    g.input('x', 'float', ['N', 4]);
    g.initializer('w', floatTensor([4, 3], new Float32Array(12).fill(0.1)));
    g.node('Erf', [g.op('MatMul', ['x', 'w'])], ['logits'], {}, 'erf_activation');
    g.output('logits', 'float', ['N', 3]);
    const run = () => importOnnxModel(g.toBuffer(), IRIS_SPEC);
    expect(run).toThrow(UnsupportedModelError);
    expect(run).toThrow(/unsupported op Erf in node "erf_activation"/);
  });

  it('refuses a graph with a dynamic example dimension and a use case whose normalisation does not fit', () => {
    const g = new OnnxGraphBuilder('dynamic');
    g.input('x', 'float', ['N', 'F']);
    g.initializer('w', floatTensor([4, 3], new Float32Array(12).fill(0.1)));
    g.node('MatMul', ['x', 'w'], ['logits']);
    g.output('logits', 'float', ['N', 3]);
    expect(() => importOnnxModel(g.toBuffer(), IRIS_SPEC)).toThrow(/input "x" is \[N, F\]: only the first \(batch\) dimension may be dynamic/);
    expect(() => importOnnxModel(torchMlp(), { ...IRIS_SPEC, normalization: { mean: [0, 0], std: [1, 1] } })).toThrow(/2 means and 2 stds for 4 inputs/);
    expect(() => importOnnxModel(torchMlp(), { ...IRIS_SPEC, normalization: { mean: [0, 0, 0, 0], std: [1, 0, 1, 1] } })).toThrow(
      /normalization.std of feature "sepal-width" must be > 0/,
    );
  });
});

describe('package manifest, both formats', () => {
  const imported = () => JSON.parse(JSON.stringify(importOnnxModel(torchMlp(), { ...IRIS_SPEC, optimizer: 'sgd_momentum' }).manifest));

  it('still reads the built-in classifier format unchanged', () => {
    const m = smallPackage([4]).manifest;
    expect(m.format).toBe('fl-model-package/1');
    expect(isImportedManifest(validateManifest(JSON.parse(JSON.stringify(m))))).toBe(false);
  });

  it.each<[string, (m: any) => void, RegExp]>([
    ['an unknown format', (m) => (m.format = 'fl-model-package/9'), /format must be one of "fl-model-package\/1", "fl-model-package\/2", got "fl-model-package\/9"/],
    ['an unknown loss', (m) => (m.loss = 'hinge'), /unsupported loss "hinge"; expected one of softmax_cross_entropy, /],
    ['an unknown optimizer', (m) => (m.optimizer = 'lbfgs'), /unsupported optimizer "lbfgs"/],
    ['a shape that does not hold the features', (m) => (m.inputs.shape = [5]), /inputs.shape \[5\] holds 5 values per example, but inputs.features names 4/],
    ['a prediction narrower than the classes', (m) => (m.prediction.width = 2), /prediction "logits" has 2 values per example but there are 3 classes/],
    ['optimizer state of another optimizer', (m) => (m.optimizer = 'adam'), /the optimizer state of adam for these parameters is 0.weight.adam_m/],
    ['a missing optimizer state file', (m) => delete m.optimizer_state, /optimizer_state must name the file/],
    ['a missing hyper-parameter', (m) => (m.hyper_parameters = m.hyper_parameters.filter((h: any) => h.name !== 'momentum')), /hyper_parameters must include momentum/],
    ['a state entry of an unknown kind', (m) => (m.state[0].kind = 'cache'), /state 0 \("0.weight.momentum"\) must have kind "batch_norm" or "optimizer"/],
    ['a name used twice', (m) => (m.parameters[1].name = m.parameters[0].name), /parameter 1: the name "0.weight" is used twice/],
    ['a zero std', (m) => (m.normalization.std[3] = 0), /normalization.std of feature "petal-width" must be > 0/],
  ])('names %s', (_, mutate, message) => {
    const m = imported();
    mutate(m);
    expect(() => validateManifest(m)).toThrow(message);
  });

  it('reading a package whose optimizer state file does not match fails naming the file', () => {
    const pkg = importOnnxModel(torchMlp(), { ...IRIS_SPEC, optimizer: 'sgd_momentum' });
    const files = modelPackageFiles({ ...pkg, initialState: new Map([...pkg.initialState!].slice(1)) });
    expect(() => readModelPackage(files)).toThrow(/model package: optimizer_state.safetensors: optimizer state: missing state "0.weight.momentum"/);
  });
});
