import { decodeSafetensorsAny, encodeSafetensors, encodeSafetensorsYielding, SafeTensor } from './safetensors';

export const BUNDLE_FORMAT = 'fl-package-bundle/1';

/**
 * Packs several files (e.g. a model package) into one safetensors buffer:
 * each file is a 1-D U8 tensor named by its path.
 */
export function encodePackageBundle(files: Record<string, Uint8Array>): Buffer {
  return encodeSafetensors(bundleTensors(files), { format: BUNDLE_FORMAT });
}

/** The same bytes as `encodePackageBundle`, copied a slice at a time (see `encodeSafetensorsYielding`): a large model's package. */
export async function encodePackageBundleYielding(files: Record<string, Uint8Array>): Promise<Buffer> {
  return encodeSafetensorsYielding(bundleTensors(files), { format: BUNDLE_FORMAT });
}

function bundleTensors(files: Record<string, Uint8Array>): Map<string, SafeTensor> {
  const tensors = new Map<string, SafeTensor>();
  for (const [path, content] of Object.entries(files)) {
    if (!path) throw new Error('bundle: file path must not be empty');
    if (!(content instanceof Uint8Array)) throw new Error(`bundle: file "${path}" must be a Buffer or Uint8Array`);
    tensors.set(path, { dtype: 'U8', shape: [content.length], data: content });
  }
  return tensors;
}

/** Unpacks a bundle. The returned Buffers are views sharing memory with `buf`. */
export function decodePackageBundle(buf: Uint8Array): Record<string, Buffer> {
  const { tensors, metadata } = decodeSafetensorsAny(buf);
  if (metadata.format !== BUNDLE_FORMAT) {
    throw new Error(`bundle: expected metadata format "${BUNDLE_FORMAT}", got ${JSON.stringify(metadata.format)}`);
  }
  const files: Record<string, Buffer> = {};
  for (const [path, t] of tensors) {
    if (t.dtype !== 'U8' || t.shape.length !== 1) {
      throw new Error(`bundle: entry "${path}" must be a 1-D U8 tensor, got ${t.dtype}[${t.shape.join(', ')}]`);
    }
    files[path] = Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  }
  return files;
}
