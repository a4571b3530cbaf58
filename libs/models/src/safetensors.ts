import { createHash, hash } from 'crypto';
import { endianness } from 'os';

/** A float32 tensor; the default tensor kind (model weights). */
export interface F32Tensor {
  dtype?: 'F32';
  shape: number[];
  data: Float32Array;
}

/** A byte tensor (used to carry opaque files, see bundle.ts). */
export interface U8Tensor {
  dtype?: 'U8';
  shape: number[];
  data: Uint8Array;
}

export type SafeTensor = F32Tensor | U8Tensor;
export type SafeDtype = 'F32' | 'U8';

/** Named float32 tensors, e.g. model weights keyed by parameter name. */
export type NamedTensors = Map<string, F32Tensor>;

/** Decoded tensor of any supported dtype; `dtype` is always set. */
export type DecodedTensor =
  | { dtype: 'F32'; shape: number[]; data: Float32Array }
  | { dtype: 'U8'; shape: number[]; data: Uint8Array };

const BYTES_PER_ELEMENT: Record<SafeDtype, number> = { F32: 4, U8: 1 };
// Same cap as the reference Rust implementation: protects against absurd header sizes.
const MAX_HEADER_BYTES = 100_000_000;
const METADATA_KEY = '__metadata__';
const HOST_IS_LE = endianness() === 'LE';

/**
 * Inputs up to this size are hashed in one call (`crypto.hash`), without a Hash object: an edge
 * worker hashes a small model's weights three times a round, and setting up the object cost more
 * than hashing them. Larger inputs keep the Hash object (which refuses more than 2 GiB, as before).
 */
const ONE_SHOT_HASH_BYTES = 16 * 1024 * 1024;

export function sha256Hex(buf: Uint8Array): string {
  if (buf.byteLength <= ONE_SHOT_HASH_BYTES) return hash('sha256', buf, 'hex');
  return createHash('sha256').update(buf).digest('hex');
}

export function elementCount(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

function dtypeOf(name: string, t: SafeTensor): SafeDtype {
  const actual: SafeDtype | undefined =
    t.data instanceof Float32Array ? 'F32' : t.data instanceof Uint8Array ? 'U8' : undefined;
  if (!actual) throw new Error(`safetensors: tensor "${name}" data must be a Float32Array or Uint8Array`);
  if (t.dtype !== undefined && t.dtype !== actual) {
    throw new Error(`safetensors: tensor "${name}" declares dtype ${t.dtype} but holds ${actual} data`);
  }
  return actual;
}

function checkShape(name: string, shape: unknown): number[] {
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new Error(`safetensors: tensor "${name}" has an invalid shape ${JSON.stringify(shape)}`);
  }
  return shape as number[];
}

/** Copies tensor data into `out` as little-endian bytes. */
function writeLE(data: Float32Array | Uint8Array, out: Buffer, offset: number): void {
  if (data instanceof Uint8Array || HOST_IS_LE) {
    out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), offset);
    return;
  }
  for (let i = 0; i < data.length; i++) out.writeFloatLE(data[i], offset + 4 * i);
}

/** The header of `tensors`' encoding (length and padded JSON) and where each tensor's data goes. */
function encodeHeader(tensors: ReadonlyMap<string, SafeTensor>, metadata?: Record<string, string>): { head: Buffer; names: string[]; starts: number[]; dataBytes: number } {
  const names = [...tensors.keys()].sort();
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new Error(`safetensors: metadata "${k}" must be a string`);
    }
    header[METADATA_KEY] = metadata;
  }
  let offset = 0;
  const starts: number[] = [];
  for (const name of names) {
    if (name === METADATA_KEY) throw new Error(`safetensors: "${METADATA_KEY}" is reserved and cannot name a tensor`);
    const t = tensors.get(name)!;
    const dtype = dtypeOf(name, t);
    const shape = checkShape(name, t.shape);
    if (elementCount(shape) !== t.data.length) {
      throw new Error(
        `safetensors: tensor "${name}" has ${t.data.length} elements but shape [${shape.join(', ')}] needs ${elementCount(shape)}`,
      );
    }
    const end = offset + t.data.byteLength;
    header[name] = { dtype, shape, data_offsets: [offset, end] };
    starts.push(offset);
    offset = end;
  }
  let json = JSON.stringify(header);
  const jsonBytes = Buffer.byteLength(json, 'utf8');
  json += ' '.repeat((8 - (jsonBytes % 8)) % 8);
  const headerLen = Buffer.byteLength(json, 'utf8');
  const head = Buffer.alloc(8 + headerLen);
  head.writeBigUInt64LE(BigInt(headerLen), 0);
  head.write(json, 8, 'utf8');
  return { head, names, starts, dataBytes: offset };
}

/**
 * Encodes tensors in the safetensors layout: u64 LE header length, JSON header
 * padded with spaces to an 8-byte boundary, then the raw little-endian data of
 * every tensor in sorted-name order with no gaps.
 */
export function encodeSafetensors(
  tensors: ReadonlyMap<string, SafeTensor>,
  metadata?: Record<string, string>,
): Buffer {
  const { head, names, starts, dataBytes } = encodeHeader(tensors, metadata);
  const out = Buffer.alloc(head.length + dataBytes);
  head.copy(out, 0);
  names.forEach((name, i) => writeLE(tensors.get(name)!.data, out, head.length + starts[i]));
  return out;
}

/** Bytes `encodeSafetensorsYielding` copies between two turns of the event loop (a few ms each here). */
const ENCODE_SLICE_BYTES = 16 * 1024 * 1024;

/**
 * The same bytes as `encodeSafetensors`, copied `sliceBytes` at a time with
 * the event loop let run between slices. Encoding a large model copies all of
 * it into fresh memory, about half a second per GiB here, which would hold
 * the process (its broker connection's heartbeats too) in one stretch. The
 * tensors must not change until the promise settles.
 */
export async function encodeSafetensorsYielding(
  tensors: ReadonlyMap<string, SafeTensor>,
  metadata?: Record<string, string>,
  sliceBytes = ENCODE_SLICE_BYTES,
): Promise<Buffer> {
  if (!Number.isSafeInteger(sliceBytes) || sliceBytes < 1) throw new Error(`safetensors: slice size must be a positive integer of bytes, got ${sliceBytes}`);
  if (!HOST_IS_LE) return encodeSafetensors(tensors, metadata);
  const { head, names, starts, dataBytes } = encodeHeader(tensors, metadata);
  const out = Buffer.alloc(head.length + dataBytes);
  head.copy(out, 0);
  let sinceTurn = 0;
  for (let i = 0; i < names.length; i++) {
    const d = tensors.get(names[i])!.data;
    const bytes = new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
    for (let at = 0; at < bytes.length; ) {
      if (sinceTurn === sliceBytes) {
        await new Promise((resolve) => setImmediate(resolve));
        sinceTurn = 0;
      }
      const n = Math.min(sliceBytes - sinceTurn, bytes.length - at);
      out.set(bytes.subarray(at, at + n), head.length + starts[i] + at);
      at += n;
      sinceTurn += n;
    }
  }
  return out;
}

/**
 * The same bytes as `encodeSafetensors`, as a list of segments whose
 * concatenation is the encoding: the header, then each tensor's data as a view
 * on it (no copy) where the host is little-endian. For data several times a
 * large model's size that is written out piece by piece (a checkpoint's
 * strategy state) and never needs to be in memory twice.
 */
export function encodeSafetensorsSegments(tensors: ReadonlyMap<string, SafeTensor>, metadata?: Record<string, string>): Buffer[] {
  if (!HOST_IS_LE) return [encodeSafetensors(tensors, metadata)];
  const { head, names } = encodeHeader(tensors, metadata);
  return [head, ...names.map((name) => {
    const d = tensors.get(name)!.data;
    return Buffer.from(d.buffer, d.byteOffset, d.byteLength);
  })];
}

/**
 * A zero-filled safetensors buffer of float32 tensors of these shapes, and the
 * tensors as views on it (the data section starts 8-byte aligned): a result
 * computed in place is its own encoding, with no copy to encode it.
 */
export function allocateSafetensors(shapes: ReadonlyMap<string, readonly number[]>): { buf: Buffer; tensors: NamedTensors } {
  // The header of the same tensors without data: shapes and offsets are all it says.
  const layout: Record<string, unknown> = {};
  let offset = 0;
  for (const name of [...shapes.keys()].sort()) {
    if (name === METADATA_KEY) throw new Error(`safetensors: "${METADATA_KEY}" is reserved and cannot name a tensor`);
    const shape = checkShape(name, [...shapes.get(name)!]);
    const end = offset + 4 * elementCount(shape);
    layout[name] = { dtype: 'F32', shape, data_offsets: [offset, end] };
    offset = end;
  }
  let json = JSON.stringify(layout);
  json += ' '.repeat((8 - (Buffer.byteLength(json, 'utf8') % 8)) % 8);
  const headerLen = Buffer.byteLength(json, 'utf8');
  const buf = Buffer.alloc(8 + headerLen + offset);
  buf.writeBigUInt64LE(BigInt(headerLen), 0);
  buf.write(json, 8, 'utf8');
  return { buf, tensors: decodeSafetensors(buf).tensors };
}

interface HeaderEntry {
  name: string;
  dtype: SafeDtype;
  shape: number[];
  begin: number;
  end: number;
}

function parseHeader(buf: Uint8Array): { entries: HeaderEntry[]; metadata: Record<string, string>; dataStart: number } {
  if (buf.length < 8) throw new Error(`safetensors: buffer of ${buf.length} bytes is too short for the 8-byte header length`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const headerLen64 = view.getBigUint64(0, true);
  if (headerLen64 > BigInt(MAX_HEADER_BYTES)) throw new Error(`safetensors: header length ${headerLen64} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  const headerLen = Number(headerLen64);
  if (8 + headerLen > buf.length) {
    throw new Error(`safetensors: header length ${headerLen} runs past the end of the ${buf.length}-byte buffer`);
  }
  let header: unknown;
  try {
    header = JSON.parse(Buffer.from(buf.buffer, buf.byteOffset + 8, headerLen).toString('utf8'));
  } catch (e) {
    throw new Error(`safetensors: header is not valid JSON (${(e as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    throw new Error('safetensors: header must be a JSON object');
  }
  const dataStart = 8 + headerLen;
  const dataLen = buf.length - dataStart;
  const metadata: Record<string, string> = {};
  const entries: HeaderEntry[] = [];
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === METADATA_KEY) {
      if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error('safetensors: __metadata__ must be an object');
      for (const [k, v] of Object.entries(raw)) {
        if (typeof v !== 'string') throw new Error(`safetensors: metadata "${k}" must be a string`);
        metadata[k] = v;
      }
      continue;
    }
    const info = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof info !== 'object' || info === null) throw new Error(`safetensors: tensor "${name}" header entry must be an object`);
    if (info.dtype !== 'F32' && info.dtype !== 'U8') {
      throw new Error(`safetensors: tensor "${name}" has unsupported dtype ${JSON.stringify(info.dtype)} (supported: F32, U8)`);
    }
    const shape = checkShape(name, info.shape);
    const offs = info.data_offsets;
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((o) => Number.isSafeInteger(o) && o >= 0)) {
      throw new Error(`safetensors: tensor "${name}" has invalid data_offsets ${JSON.stringify(offs)}`);
    }
    const [begin, end] = offs as [number, number];
    if (end < begin || end > dataLen) {
      throw new Error(`safetensors: tensor "${name}" data_offsets [${begin}, ${end}] are out of range (data section is ${dataLen} bytes)`);
    }
    const expected = elementCount(shape) * BYTES_PER_ELEMENT[info.dtype];
    if (end - begin !== expected) {
      throw new Error(
        `safetensors: tensor "${name}" spans ${end - begin} bytes but ${info.dtype}[${shape.join(', ')}] needs ${expected}`,
      );
    }
    entries.push({ name, dtype: info.dtype, shape, begin, end });
  }
  // Like the reference implementation: tensors must tile the data section exactly.
  const byOffset = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  for (const e of byOffset) {
    if (e.begin !== cursor) {
      throw new Error(
        e.begin < cursor
          ? `safetensors: tensor "${e.name}" overlaps the previous tensor (starts at ${e.begin}, previous ends at ${cursor})`
          : `safetensors: gap in the data section before tensor "${e.name}" (${cursor}..${e.begin})`,
      );
    }
    cursor = e.end;
  }
  if (cursor !== dataLen) throw new Error(`safetensors: data section is ${dataLen} bytes but tensors cover only ${cursor}`);
  return { entries, metadata, dataStart };
}

function readF32(buf: Uint8Array, byteOffset: number, count: number): Float32Array {
  const abs = buf.byteOffset + byteOffset;
  if (HOST_IS_LE && abs % 4 === 0) return new Float32Array(buf.buffer, abs, count);
  const out = new Float32Array(count);
  // Unaligned on a little-endian host: the bytes are already the values, one copy (a memcpy) aligns them.
  if (HOST_IS_LE) {
    new Uint8Array(out.buffer).set(new Uint8Array(buf.buffer, abs, count * 4));
    return out;
  }
  const view = new DataView(buf.buffer, abs, count * 4);
  for (let i = 0; i < count; i++) out[i] = view.getFloat32(4 * i, true);
  return out;
}

/**
 * Decodes a safetensors buffer holding F32 and/or U8 tensors. F32 data is a
 * zero-copy view into `buf` when aligned, so it shares memory with `buf`.
 */
export function decodeSafetensorsAny(buf: Uint8Array): { tensors: Map<string, DecodedTensor>; metadata: Record<string, string> } {
  const { entries, metadata, dataStart } = parseHeader(buf);
  const tensors = new Map<string, DecodedTensor>();
  for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    const count = elementCount(e.shape);
    if (e.dtype === 'F32') {
      tensors.set(e.name, { dtype: 'F32', shape: e.shape, data: readF32(buf, dataStart + e.begin, count) });
    } else {
      tensors.set(e.name, { dtype: 'U8', shape: e.shape, data: new Uint8Array(buf.buffer, buf.byteOffset + dataStart + e.begin, count) });
    }
  }
  return { tensors, metadata };
}

/** The tensors' shapes by name, from the header alone (no data is read or copied). */
export function safetensorsLayout(buf: Uint8Array): Map<string, number[]> {
  return new Map(parseHeader(buf).entries.map((e) => [e.name, e.shape]));
}

/** Decodes a safetensors buffer whose tensors must all be F32 (e.g. model weights). */
export function decodeSafetensors(buf: Uint8Array): { tensors: NamedTensors; metadata: Record<string, string> } {
  const decoded = decodeSafetensorsAny(buf);
  const tensors: NamedTensors = new Map();
  for (const [name, t] of decoded.tensors) {
    if (t.dtype !== 'F32') throw new Error(`safetensors: tensor "${name}" has dtype ${t.dtype}, expected F32`);
    tensors.set(name, { shape: t.shape, data: t.data });
  }
  return { tensors, metadata: decoded.metadata };
}
