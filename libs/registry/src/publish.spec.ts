import { packageHash, publishModelPackage } from './publish';
import { ModelRegistry, validateArtifactPath } from './model-registry';

describe('packageHash', () => {
  it('is independent of key order and sensitive to names, contents and boundaries', () => {
    const a = packageHash({ x: Buffer.from('1'), y: Buffer.from('2') });
    expect(packageHash({ y: Buffer.from('2'), x: Buffer.from('1') })).toBe(a);
    expect(packageHash({ x: Buffer.from('1'), z: Buffer.from('2') })).not.toBe(a);
    expect(packageHash({ x: Buffer.from('1'), y: Buffer.from('3') })).not.toBe(a);
    expect(packageHash({ ab: Buffer.from('c') })).not.toBe(packageHash({ a: Buffer.from('bc') }));
    expect(a).toMatch(/^[0-9a-f]{64}$/);
  });

  it('publish rejects an empty package and a caller-supplied hash tag before touching the registry', async () => {
    const reg = {} as ModelRegistry;
    await expect(publishModelPackage(reg, 'm', {})).rejects.toThrow(/at least one file/);
    await expect(publishModelPackage(reg, 'm', { a: Buffer.from('') }, { package_sha256: 'x' })).rejects.toThrow(/computed/);
  });
});

describe('validateArtifactPath', () => {
  it.each(['model.onnx', 'a/b/c.bin', 'weights/init.safetensors', '..x', 'x..'])('accepts %s', (p) => {
    expect(() => validateArtifactPath(p)).not.toThrow();
  });
  it.each(['..', '../a', 'a/..', '/abs', 'a\\b', 'a//b', '', 'a\u0000b'])('rejects %j', (p) => {
    expect(() => validateArtifactPath(p)).toThrow(/Invalid artifact path/);
  });
});
