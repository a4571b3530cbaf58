import { createHash } from 'node:crypto';
import { ModelRegistry, ModelVersionInfo, RegistryValidationError } from './model-registry';

export const PACKAGE_HASH_TAG = 'package_sha256';

/**
 * sha256 over the package: files sorted by name (code-unit order); for each, the
 * UTF-8 name and the content, each preceded by its byte length as a 64-bit
 * big-endian integer (so "ab"+"c" and "a"+"bc" cannot collide).
 */
export function packageHash(files: Record<string, Buffer>): string {
  const h = createHash('sha256');
  const len = (n: number) => {
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(BigInt(n));
    return b;
  };
  for (const name of Object.keys(files).sort()) {
    if (!Buffer.isBuffer(files[name])) throw new RegistryValidationError('files', `'${name}' must be a Buffer`);
    const nameBytes = Buffer.from(name, 'utf8');
    h.update(len(nameBytes.length)).update(nameBytes);
    h.update(len(files[name].length)).update(files[name]);
  }
  return h.digest('hex');
}

// Same-process publishes of one model are serialised, so that two concurrent
// publishes of the same package in one process cannot both create a version.
const chains = new WeakMap<ModelRegistry, Map<string, Promise<unknown>>>();

function serialise<T>(registry: ModelRegistry, key: string, fn: () => Promise<T>): Promise<T> {
  let m = chains.get(registry);
  if (!m) chains.set(registry, (m = new Map()));
  const prev = m.get(key) ?? Promise.resolve();
  const run = prev.then(fn, fn);
  const tail = run.catch(() => undefined);
  m.set(key, tail);
  void tail.then(() => {
    if (m!.get(key) === tail) m!.delete(key);
  });
  return run;
}

/**
 * Publishes a model package (file name -> bytes) as a new version of `name`, tagged
 * `package_sha256=<hash>` plus `tags`. If a version with the same package hash
 * already exists, returns it instead (`created: false`): publishing twice is safe.
 * Creates the registered model if needed.
 *
 * Caveat: the check-then-create is atomic within one process (serialised per
 * registry and model name), not across processes; two processes publishing the
 * identical package at the same instant may create two versions with the same hash
 * (both valid; `searchVersions` returns the lower first, which this function then reuses).
 */
export async function publishModelPackage(
  registry: ModelRegistry,
  name: string,
  files: Record<string, Buffer>,
  tags: Record<string, string> = {},
): Promise<{ version: ModelVersionInfo; created: boolean }> {
  if (!files || typeof files !== 'object' || Object.keys(files).length === 0) {
    throw new RegistryValidationError('files', 'a model package needs at least one file');
  }
  if (PACKAGE_HASH_TAG in tags) {
    throw new RegistryValidationError('tags', `'${PACKAGE_HASH_TAG}' is computed from the package and cannot be given`);
  }
  const hash = packageHash(files);
  return serialise(registry, name, async () => {
    const existing = await registry.searchVersions({ name, tags: { [PACKAGE_HASH_TAG]: hash } });
    if (existing.length) return { version: existing[0], created: false };
    await registry.createModel(name);
    const artifacts = Object.keys(files)
      .sort()
      .map((path) => ({ path, data: files[path] }));
    const version = await registry.createVersion(name, artifacts, { tags: { ...tags, [PACKAGE_HASH_TAG]: hash } });
    return { version, created: true };
  });
}
