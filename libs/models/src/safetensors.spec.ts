import { createHash } from 'crypto';
import { decodeSafetensors, decodeSafetensorsAny, encodeSafetensors, encodeSafetensorsSegments, encodeSafetensorsYielding, NamedTensors, SafeTensor, sha256Hex } from './safetensors';

function sample(): NamedTensors {
  return new Map([
    ['layers.1.bias', { shape: [3], data: Float32Array.of(0.5, -1.25, 3e-8) }],
    ['layers.0.weight', { shape: [2, 3], data: Float32Array.of(1, 2, 3, 4, 5, -6) }],
    ['scalar', { shape: [], data: Float32Array.of(Math.PI) }],
    ['empty', { shape: [0, 4], data: new Float32Array(0) }],
  ]);
}

/** Reads the header the way Python's safetensors does: u64 LE length, then JSON at [8, 8 + n). */
function pythonStyleHeader(buf: Buffer): { n: number; header: Record<string, any> } {
  const n = Number(buf.readBigUInt64LE(0));
  return { n, header: JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) };
}

/** Rewrites the JSON header of a valid file (keeping 8-byte alignment). */
function withHeader(buf: Buffer, edit: (h: Record<string, any>) => void): Buffer {
  const { n, header } = pythonStyleHeader(buf);
  edit(header);
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const out = Buffer.alloc(8 + json.length);
  out.writeBigUInt64LE(BigInt(json.length), 0);
  out.write(json, 8);
  return Buffer.concat([out, buf.subarray(8 + n)]);
}

describe('safetensors', () => {
  it('round-trips F32 tensors and metadata', () => {
    const buf = encodeSafetensors(sample(), { format: 'pt', note: 'héllo' });
    const { tensors, metadata } = decodeSafetensors(buf);
    expect(metadata).toEqual({ format: 'pt', note: 'héllo' });
    expect([...tensors.keys()]).toEqual(['empty', 'layers.0.weight', 'layers.1.bias', 'scalar']);
    for (const [name, t] of sample()) {
      expect(tensors.get(name)!.shape).toEqual(t.shape);
      expect(tensors.get(name)!.data).toEqual(t.data);
      expect(tensors.get(name)!.data).toBeInstanceOf(Float32Array);
    }
  });

  it('gives the same bytes as segments: the header, then views on each tensor in name order', () => {
    const tensors = sample();
    const segments = encodeSafetensorsSegments(tensors, { format: 'pt' });
    expect(Buffer.concat(segments).equals(encodeSafetensors(tensors, { format: 'pt' }))).toBe(true);
    expect(segments).toHaveLength(tensors.size + 1);
    expect(segments[2].buffer).toBe(tensors.get('layers.0.weight')!.data.buffer); // sorted: 'empty' first
  });

  it('writes the exact safetensors layout', () => {
    const buf = encodeSafetensors(sample());
    const { n, header } = pythonStyleHeader(buf);
    expect(buf.readUInt32LE(0)).toBe(n);
    expect(buf.readUInt32LE(4)).toBe(0);
    expect((8 + n) % 8).toBe(0);
    expect(buf.subarray(8, 8 + n).toString('utf8')).toMatch(/^\{.*\} *$/);
    expect(header.__metadata__).toBeUndefined();
    // sorted-name order, contiguous offsets
    expect(header.empty).toEqual({ dtype: 'F32', shape: [0, 4], data_offsets: [0, 0] });
    expect(header['layers.0.weight']).toEqual({ dtype: 'F32', shape: [2, 3], data_offsets: [0, 24] });
    expect(header['layers.1.bias']).toEqual({ dtype: 'F32', shape: [3], data_offsets: [24, 36] });
    expect(header.scalar).toEqual({ dtype: 'F32', shape: [], data_offsets: [36, 40] });
    expect(buf.length).toBe(8 + n + 40);
    const data = buf.subarray(8 + n);
    expect(data.readFloatLE(0)).toBe(1);
    expect(data.readFloatLE(20)).toBe(-6);
    expect(data.readFloatLE(28)).toBe(Math.fround(-1.25));
  });

  it('round-trips U8 tensors mixed with F32, copying unaligned F32 data', () => {
    const tensors = new Map<string, SafeTensor>([
      ['a.bytes', { dtype: 'U8', shape: [5], data: Uint8Array.of(1, 2, 3, 254, 255) }],
      ['b.floats', { shape: [2], data: Float32Array.of(1.5, -2.5) }],
    ]);
    const buf = encodeSafetensors(tensors);
    const { header } = pythonStyleHeader(buf);
    expect(header['a.bytes']).toEqual({ dtype: 'U8', shape: [5], data_offsets: [0, 5] });
    expect(header['b.floats'].data_offsets).toEqual([5, 13]);
    const decoded = decodeSafetensorsAny(buf);
    const bytes = decoded.tensors.get('a.bytes')!;
    const floats = decoded.tensors.get('b.floats')!;
    expect(bytes.dtype).toBe('U8');
    expect(Array.from(bytes.data)).toEqual([1, 2, 3, 254, 255]);
    expect(floats.dtype).toBe('F32');
    expect(Array.from(floats.data)).toEqual([1.5, -2.5]);
    expect(floats.data.buffer).not.toBe(buf.buffer); // offset 5 is unaligned: copied
    expect(() => decodeSafetensors(buf)).toThrow('tensor "a.bytes" has dtype U8, expected F32');
  });

  it('returns zero-copy views when the data is 4-byte aligned', () => {
    const buf = encodeSafetensors(sample());
    const t = decodeSafetensors(buf).tensors.get('layers.1.bias')!;
    expect(t.data.buffer).toBe(buf.buffer);
    // the same bytes at an odd offset cannot be viewed as float32 and are copied
    const shifted = Buffer.alloc(buf.length + 1);
    buf.copy(shifted, 1);
    const odd = shifted.subarray(1);
    const copied = decodeSafetensors(odd).tensors.get('layers.1.bias')!;
    expect(copied.data.buffer).not.toBe(odd.buffer);
    expect(copied.data).toEqual(t.data);
  });

  it('rejects inconsistent inputs when encoding', () => {
    expect(() => encodeSafetensors(new Map([['w', { shape: [2, 2], data: new Float32Array(3) }]]))).toThrow(
      'tensor "w" has 3 elements but shape [2, 2] needs 4',
    );
    expect(() => encodeSafetensors(new Map([['w', { dtype: 'U8', shape: [1], data: new Float32Array(1) } as any]]))).toThrow(
      'tensor "w" declares dtype U8 but holds F32 data',
    );
    expect(() => encodeSafetensors(new Map([['__metadata__', { shape: [1], data: new Float32Array(1) }]]))).toThrow('reserved');
  });

  describe('encodeSafetensorsYielding', () => {
    it('writes the bytes encodeSafetensors writes, whatever the slice size', async () => {
      // Views at odd offsets and byte tensors beside float ones: the copy takes each as it lies.
      const backing = new Float32Array(40).map((_, i) => i * 0.25 - 3);
      const tensors = new Map<string, SafeTensor>([
        ...sample(),
        ['view', { shape: [5, 3], data: backing.subarray(7, 22) }],
        ['bytes', { dtype: 'U8', shape: [11], data: Uint8Array.from({ length: 11 }, (_, i) => 250 - i) }],
      ]);
      const expected = encodeSafetensors(tensors, { model: 'm' });
      for (const slice of [1, 3, 4, 7, 16, 33, 1000]) expect((await encodeSafetensorsYielding(tensors, { model: 'm' }, slice)).equals(expected)).toBe(true);
      expect((await encodeSafetensorsYielding(tensors, { model: 'm' })).equals(expected)).toBe(true);
      expect((await encodeSafetensorsYielding(new Map())).equals(encodeSafetensors(new Map()))).toBe(true);
    });

    it('copies a slice at a time, letting the event loop run between the slices', async () => {
      const tensors: NamedTensors = new Map([
        ['a', { shape: [3], data: Float32Array.of(1, 2, 3) }],
        ['b', { shape: [7], data: new Float32Array(7).fill(5) }],
      ]);
      const total = encodeSafetensors(tensors).length;
      const events: string[] = [];
      const original = Uint8Array.prototype.set;
      const set = jest.spyOn(Uint8Array.prototype, 'set').mockImplementation(function (this: Uint8Array, source: ArrayLike<number>, offset?: number) {
        if (this.length === total) {
          events.push(`copy ${source.length}`);
          // Runs before the next copy only if the event loop turned between them.
          setImmediate(() => events.push('turn'));
        }
        return original.call(this, source, offset);
      });
      try {
        await encodeSafetensorsYielding(tensors, undefined, 16);
      } finally {
        set.mockRestore();
      }
      // 40 bytes in slices of 16: a's 12 and 4 of b's, then 16, then 8.
      expect(events.slice(0, 7)).toEqual(['copy 12', 'copy 4', 'turn', 'turn', 'copy 16', 'turn', 'copy 8']);
    });

    it('refuses a slice size that is not a positive integer, naming it', async () => {
      for (const bad of [0, -1, 2.5, NaN]) await expect(encodeSafetensorsYielding(sample(), undefined, bad)).rejects.toThrow(`slice size must be a positive integer of bytes, got ${bad}`);
    });

    it('refuses what encodeSafetensors refuses', async () => {
      const bad = new Map([['w', { shape: [2], data: Float32Array.of(1, 2, 3) }]]);
      await expect(encodeSafetensorsYielding(bad)).rejects.toThrow('tensor "w" has 3 elements but shape [2] needs 2');
    });
  });

  describe('rejects corrupt input', () => {
    const good = encodeSafetensors(sample());

    it.each([
      ['a buffer shorter than the length prefix', () => good.subarray(0, 5), 'too short'],
      ['a header running past the end', () => good.subarray(0, 20), 'runs past the end'],
      ['a truncated data section', () => good.subarray(0, good.length - 4), 'out of range'],
      ['trailing bytes', () => Buffer.concat([good, Buffer.alloc(4)]), 'tensors cover only 40'],
      ['non-JSON header', () => Buffer.concat([Buffer.from([4, 0, 0, 0, 0, 0, 0, 0]), Buffer.from('{{{{')]), 'not valid JSON'],
      ['an absurd header length', () => Buffer.from([0, 0, 0, 0, 0, 0, 0, 1]), 'exceeds'],
      ['an unknown dtype', () => withHeader(good, (h) => (h.scalar.dtype = 'BF16')), 'tensor "scalar" has unsupported dtype "BF16"'],
      ['offsets out of range', () => withHeader(good, (h) => (h.scalar.data_offsets = [36, 44])), 'tensor "scalar" data_offsets [36, 44] are out of range'],
      ['reversed offsets', () => withHeader(good, (h) => (h.scalar.data_offsets = [40, 36])), 'tensor "scalar" data_offsets [40, 36]'],
      ['a size that does not match the shape', () => withHeader(good, (h) => (h['layers.1.bias'].shape = [4])), 'tensor "layers.1.bias" spans 12 bytes but F32[4] needs 16'],
      [
        'overlapping tensors',
        () => withHeader(good, (h) => (h['layers.1.bias'].data_offsets = [20, 32])),
        'tensor "layers.1.bias" overlaps the previous tensor',
      ],
      ['a negative dimension', () => withHeader(good, (h) => (h.scalar.shape = [-1])), 'tensor "scalar" has an invalid shape [-1]'],
      ['non-string metadata', () => withHeader(good, (h) => (h.__metadata__ = { a: 1 })), 'metadata "a" must be a string'],
    ])('%s', (_label, make, message) => {
      expect(() => decodeSafetensorsAny(make())).toThrow(message);
    });
  });

  it('sha256Hex hashes bytes', () => {
    expect(sha256Hex(Buffer.from('abc'))).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });

  it('sha256Hex hashes only the bytes of a view, small or large, as the streaming hash does', () => {
    const streamed = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
    const small = new Uint8Array(64).map((_, i) => i);
    expect(sha256Hex(small.subarray(3, 40))).toBe(streamed(small.subarray(3, 40)));
    const large = Buffer.alloc(16 * 1024 * 1024 + 9, 7);
    large[5] = 1;
    for (const view of [large, large.subarray(4), large.subarray(8, 16 * 1024 * 1024 + 8)]) expect(sha256Hex(view)).toBe(streamed(view));
  });
});
