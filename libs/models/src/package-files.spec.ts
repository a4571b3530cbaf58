import { decodePackageBundle, encodePackageBundle } from './bundle';
import { modelPackageFiles, modelPackageFilesYielding, readModelPackage } from './package-files';
import { encodeSafetensors, NamedTensors } from './safetensors';
import { smallPackage } from './test/fixtures';

describe('model package files', () => {
  const pkg = smallPackage([8]);
  const files = () => modelPackageFiles(pkg);
  const withManifest = (edit: (m: any) => void) => {
    const f = files();
    const m = JSON.parse(f['manifest.json'].toString());
    edit(m);
    f['manifest.json'] = Buffer.from(JSON.stringify(m));
    return f;
  };

  it('has the manifest layout the design describes', () => {
    expect(Object.keys(files()).sort()).toEqual(['inference.onnx', 'manifest.json', 'train_step.onnx', 'weights.safetensors']);
    expect(pkg.manifest).toEqual({
      format: 'fl-model-package/1',
      name: 'test-mlp-8',
      task: 'classification',
      inputs: { name: 'x', features: ['f0', 'f1', 'f2', 'f3'] },
      classes: ['a', 'b', 'c'],
      parameters: [
        { name: 'layers.0.weight', shape: [8, 4] },
        { name: 'layers.0.bias', shape: [8] },
        { name: 'layers.1.weight', shape: [3, 8] },
        { name: 'layers.1.bias', shape: [3] },
      ],
      normalization: { mean: [1, -2, 0.5, 10], std: [2, 0.5, 1, 4] },
      architecture: { type: 'mlp', hidden: [8] },
      loss: 'softmax_cross_entropy',
      defaults: { learning_rate: 0.1, batch_size: 32, local_epochs: 1 },
      graphs: { inference: 'inference.onnx', train_step: 'train_step.onnx' },
      weights: 'weights.safetensors',
    });
  });

  it('initial weights are deterministic in the seed, Glorot-bounded, with zero biases', () => {
    const again = smallPackage([8]);
    const other = smallPackage([8], { seed: 8 });
    const w = pkg.initialWeights.get('layers.0.weight')!.data;
    expect(again.initialWeights.get('layers.0.weight')!.data).toEqual(w);
    expect(other.initialWeights.get('layers.0.weight')!.data).not.toEqual(w);
    const limit = Math.sqrt(6 / (4 + 8));
    expect(w.every((v) => Math.abs(v) <= limit)).toBe(true);
    expect(pkg.initialWeights.get('layers.0.bias')!.data.every((v) => v === 0)).toBe(true);
    expect(pkg.trainStepOnnx.equals(again.trainStepOnnx)).toBe(true);
  });

  it('gives the same files, in the same order, when its tensors are encoded a slice at a time', async () => {
    const yielded = await modelPackageFilesYielding(pkg);
    expect(Object.keys(yielded)).toEqual(Object.keys(files()));
    for (const [path, data] of Object.entries(files())) expect(yielded[path].equals(data)).toBe(true);
  });

  it('round-trips through a bundle', () => {
    const read = readModelPackage(decodePackageBundle(encodePackageBundle(files())));
    expect(read.manifest).toEqual(pkg.manifest);
    expect(read.inferenceOnnx.equals(pkg.inferenceOnnx)).toBe(true);
    expect(read.trainStepOnnx.equals(pkg.trainStepOnnx)).toBe(true);
    for (const [name, t] of pkg.initialWeights) {
      expect(read.initialWeights.get(name)!.shape).toEqual(t.shape);
      expect(read.initialWeights.get(name)!.data).toEqual(t.data);
    }
  });

  it('rejects invalid packages with clear errors', () => {
    const without = (name: string) => {
      const f: Record<string, Buffer> = files();
      delete f[name];
      return f;
    };
    const weights = (tensors: NamedTensors) => ({ ...files(), 'weights.safetensors': encodeSafetensors(tensors) });
    const dropped = new Map(pkg.initialWeights);
    dropped.delete('layers.1.bias');
    const reshaped = new Map(pkg.initialWeights);
    reshaped.set('layers.1.bias', { shape: [1, 3], data: new Float32Array(3) });
    const extra = new Map(pkg.initialWeights);
    extra.set('layers.2.bias', { shape: [1], data: new Float32Array(1) });

    expect(() => readModelPackage(without('manifest.json'))).toThrow('missing manifest file "manifest.json"');
    expect(() => readModelPackage({ ...files(), 'manifest.json': Buffer.from('{oops') })).toThrow('manifest.json is not valid JSON');
    expect(() => readModelPackage(without('train_step.onnx'))).toThrow('missing train-step graph file "train_step.onnx"');
    expect(() => readModelPackage(without('weights.safetensors'))).toThrow('missing weights file "weights.safetensors"');
    expect(() => readModelPackage(withManifest((m) => (m.format = 'other/2')))).toThrow('format must be one of "fl-model-package/1", "fl-model-package/2", got "other/2"');
    expect(() => readModelPackage(withManifest((m) => (m.classes = ['only'])))).toThrow('at least two class names');
    expect(() => readModelPackage(withManifest((m) => (m.normalization.std[2] = 0)))).toThrow('normalization.std values must be > 0');
    expect(() => readModelPackage(withManifest((m) => (m.parameters[0].shape = [4, 8])))).toThrow(
      'parameter 0 must be layers.0.weight [8, 4]',
    );
    expect(() => readModelPackage(weights(dropped))).toThrow('weights.safetensors: weights: missing parameter "layers.1.bias"');
    expect(() => readModelPackage(weights(reshaped))).toThrow('parameter "layers.1.bias" has shape [1, 3], manifest says [3]');
    expect(() => readModelPackage(weights(extra))).toThrow('unexpected tensors "layers.2.bias"');
    expect(() => readModelPackage({ ...files(), 'weights.safetensors': Buffer.from('garbage!garbage!') })).toThrow(
      'weights.safetensors: safetensors:',
    );
  });
});
