import { checkTensors, checkWeights, isImportedManifest, ModelPackage, validateManifest } from './manifest';
import { optimizerState } from './autodiff/optimizers';
import { decodeSafetensors, encodeSafetensors, encodeSafetensorsYielding, NamedTensors } from './safetensors';

export const MANIFEST_FILE = 'manifest.json';
const EMPTY = Buffer.alloc(0);

/** The files of a model package, keyed by the names the manifest uses. */
export function modelPackageFiles(pkg: ModelPackage): Record<string, Buffer> {
  const { files, encoded } = packageFileParts(pkg);
  for (const e of encoded) files[e.path] = encodeSafetensors(e.tensors, e.metadata);
  return files;
}

/** The same files as `modelPackageFiles`, the tensors encoded a slice at a time (see `encodeSafetensorsYielding`): a large model's. */
export async function modelPackageFilesYielding(pkg: ModelPackage): Promise<Record<string, Buffer>> {
  const { files, encoded } = packageFileParts(pkg);
  for (const e of encoded) files[e.path] = await encodeSafetensorsYielding(e.tensors, e.metadata);
  return files;
}

interface TensorFile {
  path: string;
  tensors: NamedTensors;
  metadata: Record<string, string>;
}

/** A package's files as they are (manifest, graphs), and the tensors still to encode into the places left for them. */
function packageFileParts(pkg: ModelPackage): { files: Record<string, Buffer>; encoded: TensorFile[] } {
  const m = pkg.manifest;
  const files: Record<string, Buffer> = {
    [MANIFEST_FILE]: Buffer.from(JSON.stringify(m, null, 2) + '\n', 'utf8'),
    [m.graphs.inference]: pkg.inferenceOnnx,
    [m.graphs.train_step]: pkg.trainStepOnnx,
    // Filled in by the caller; the key keeps its place in the files' order.
    [m.weights]: EMPTY,
  };
  const encoded: TensorFile[] = [{ path: m.weights, tensors: pkg.initialWeights, metadata: { model: m.name } }];
  if (isImportedManifest(m) && m.graphs.train_step_fedprox) {
    if (!pkg.trainStepFedProxOnnx) throw new Error(`model package "${m.name}": the manifest names ${m.graphs.train_step_fedprox} but the package has no FedProx train-step graph`);
    files[m.graphs.train_step_fedprox] = pkg.trainStepFedProxOnnx;
  }
  if (isImportedManifest(m) && m.optimizer_state) {
    if (!pkg.initialState) throw new Error(`model package "${m.name}": the manifest names ${m.optimizer_state} but the package has no initial optimizer state`);
    files[m.optimizer_state] = EMPTY;
    encoded.push({ path: m.optimizer_state, tensors: pkg.initialState, metadata: { model: m.name, optimizer: m.optimizer } });
  }
  return { files, encoded };
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
  const readTensors = (name: string, role: string, check: (t: NamedTensors) => void): NamedTensors => {
    const bytes = file(name, role);
    try {
      const tensors = decodeSafetensors(bytes).tensors;
      check(tensors);
      return tensors;
    } catch (e) {
      throw new Error(`model package: ${name}: ${(e as Error).message}`);
    }
  };
  const initialWeights = readTensors(manifest.weights, 'weights', (t) => checkWeights(manifest, t));
  if (!isImportedManifest(manifest)) return { manifest, inferenceOnnx, trainStepOnnx, initialWeights };
  const fedProx = manifest.graphs.train_step_fedprox;
  const pkg: ModelPackage = { manifest, inferenceOnnx, trainStepOnnx, initialWeights, ...(fedProx ? { trainStepFedProxOnnx: file(fedProx, 'FedProx train-step graph') } : {}) };
  if (!manifest.optimizer_state) return pkg;
  const slots = optimizerState(manifest.optimizer, manifest.parameters);
  const initialState = readTensors(manifest.optimizer_state, 'optimizer state', (t) => checkTensors(slots, t, 'optimizer state', 'state'));
  return { ...pkg, initialState };
}
