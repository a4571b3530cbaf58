import { decodePackageBundle, encodePackageBundle, encodePackageBundleYielding } from './bundle';
import { encodeSafetensors } from './safetensors';

describe('package bundle', () => {
  it('round-trips files of any size, including empty and unaligned ones', () => {
    const files = {
      'manifest.json': Buffer.from('{"a":1}'),
      'nested/dir/blob.bin': Buffer.from([0, 1, 2, 255, 128]),
      'empty.txt': Buffer.alloc(0),
    };
    const decoded = decodePackageBundle(encodePackageBundle(files));
    expect(Object.keys(decoded).sort()).toEqual(Object.keys(files).sort());
    for (const [path, content] of Object.entries(files)) expect(decoded[path].equals(content)).toBe(true);
  });

  it('is the same bundle when copied a slice at a time', async () => {
    const files = { 'manifest.json': Buffer.from('{"a":1}'), 'weights.safetensors': Buffer.alloc(3 * 2 ** 20 + 5, 9), 'empty.txt': Buffer.alloc(0) };
    expect((await encodePackageBundleYielding(files)).equals(encodePackageBundle(files))).toBe(true);
    await expect(encodePackageBundleYielding({ '': Buffer.from('x') })).rejects.toThrow('bundle: file path must not be empty');
  });

  it('rejects safetensors files that are not bundles', () => {
    const weights = encodeSafetensors(new Map([['w', { shape: [1], data: Float32Array.of(1) }]]));
    expect(() => decodePackageBundle(weights)).toThrow('expected metadata format "fl-package-bundle/1"');
    const notU8 = encodeSafetensors(new Map([['w', { shape: [1], data: Float32Array.of(1) }]]), { format: 'fl-package-bundle/1' });
    expect(() => decodePackageBundle(notU8)).toThrow('entry "w" must be a 1-D U8 tensor, got F32[1]');
  });
});
