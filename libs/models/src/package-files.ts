import { checkWeights, ModelPackage, validateManifest } from './manifest';
import { decodeSafetensors, encodeSafetensors } from './safetensors';

export const MANIFEST_FILE = 'manifest.json';

/** The files of a model package, keyed by the names the manifest uses. */
export function modelPackageFiles(pkg: ModelPackage): Record<string, Buffer> {
  const m = pkg.manifest;
  return {
    [MANIFEST_FILE]: Buffer.from(JSON.stringify(m, null, 2) + '\n', 'utf8'),
    [m.graphs.inference]: pkg.inferenceOnnx,
    [m.graphs.train_step]: pkg.trainStepOnnx,
    [m.weights]: encodeSafetensors(pkg.initialWeights, { model: m.name }),
  };
}

/** Reads and validates package files (e.g. from decodePackageBundle). */
export function readModelPackage(files: Record<string, Uint8Array>): ModelPackage {
  const file = (name: string, role: string): Buffer => {
    const f = files[name];
    if (!f) throw new Error(`model package: missing ${role} file "${name}"`);
    if (f.length === 0) throw new Error(`model package: ${role} file "${name}" is empty`);
    return Buffer.isBuffer(f) ? f : Buffer.from(f.buffer, f.byteOffset, f.byteLength);
  };
  const manifestFile = file(MANIFEST_FILE, 'manifest');
  let parsed: unknown;
  try {
    parsed = JSON.parse(manifestFile.toString('utf8'));
  } catch (e) {
    throw new Error(`model package: ${MANIFEST_FILE} is not valid JSON (${(e as Error).message})`);
  }
  const manifest = validateManifest(parsed);
  const inferenceOnnx = file(manifest.graphs.inference, 'inference graph');
  const trainStepOnnx = file(manifest.graphs.train_step, 'train-step graph');
  const weightsFile = file(manifest.weights, 'weights');
  let initialWeights;
  try {
    initialWeights = decodeSafetensors(weightsFile).tensors;
    checkWeights(manifest, initialWeights);
  } catch (e) {
    throw new Error(`model package: ${manifest.weights}: ${(e as Error).message}`);
  }
  return { manifest, inferenceOnnx, trainStepOnnx, initialWeights };
}
