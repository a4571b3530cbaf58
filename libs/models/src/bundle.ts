import { decodeSafetensorsAny, encodeSafetensors, SafeTensor } from './safetensors';

export const BUNDLE_FORMAT = 'fl-package-bundle/1';

/**
 * Packs several files (e.g. a model package) into one safetensors buffer:
 * each file is a 1-D U8 tensor named by its path.
 */
export function encodePackageBundle(files: Record<string, Uint8Array>): Buffer {
  const tensors = new Map<string, SafeTensor>();
  for (const [path, content] of Object.entries(files)) {
    if (!path) throw new Error('bundle: file path must not be empty');
    if (!(content instanceof Uint8Array)) throw new Error(`bundle: file "${path}" must be a Buffer or Uint8Array`);
    tensors.set(path, { dtype: 'U8', shape: [content.length], data: content });
  }
  return encodeSafetensors(tensors, { format: BUNDLE_FORMAT });
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
