import { buildInferenceGraph, buildTrainStepGraph } from './classifier-graphs';
import { layerSizes, MODEL_PACKAGE_FORMAT, mlpParameters, ClassifierManifest, ClassifierPackage, Normalization, TrainingDefaults, validateManifest } from './manifest';
import { seededRandom } from '@fl/datasets';
import { NamedTensors } from './safetensors';
import { copyNormalization } from './feature-statistics';

export interface ClassifierSpec {
  name: string;
  featureNames: string[];
  classes: string[];
  /** Hidden layer widths; [] = softmax regression. */
  hidden: number[];
  normalization: Normalization;
  /** Seed of the initial weights. */
  seed: number;
  defaults?: Partial<TrainingDefaults>;
}

export const DEFAULT_TRAINING: TrainingDefaults = { learning_rate: 0.1, batch_size: 32, local_epochs: 1 };

/** Glorot-uniform weights, zero biases, deterministic in `seed`. */
export function initialClassifierWeights(manifest: ClassifierManifest, seed: number): NamedTensors {
  const rand = seededRandom(seed);
  const weights: NamedTensors = new Map();
  for (const p of manifest.parameters) {
    const data = new Float32Array(p.shape.reduce((a, b) => a * b, 1));
    if (p.shape.length === 2) {
      const [fanOut, fanIn] = p.shape;
      const limit = Math.sqrt(6 / (fanIn + fanOut));
      for (let i = 0; i < data.length; i++) data[i] = (2 * rand() - 1) * limit;
    }
    weights.set(p.name, { shape: [...p.shape], data });
  }
  return weights;
}

export function buildClassifierManifest(spec: ClassifierSpec): ClassifierManifest {
  const base = {
    inputs: { name: 'x' as const, features: [...spec.featureNames] },
    classes: [...spec.classes],
    architecture: { type: 'mlp' as const, hidden: [...spec.hidden] },
  };
  const manifest: ClassifierManifest = {
    format: MODEL_PACKAGE_FORMAT,
    name: spec.name,
    task: 'classification',
    ...base,
    parameters: mlpParameters(layerSizes(base)),
    normalization: copyNormalization(spec.normalization),
    loss: 'softmax_cross_entropy',
    defaults: { ...DEFAULT_TRAINING, ...spec.defaults },
    graphs: { inference: 'inference.onnx', train_step: 'train_step.onnx' },
    weights: 'weights.safetensors',
  };
  return validateManifest(manifest) as ClassifierManifest;
}

export function buildClassifierPackage(spec: ClassifierSpec): ClassifierPackage {
  const manifest = buildClassifierManifest(spec);
  return {
    manifest,
    inferenceOnnx: buildInferenceGraph(manifest),
    trainStepOnnx: buildTrainStepGraph(manifest),
    initialWeights: initialClassifierWeights(manifest, spec.seed),
  };
}
