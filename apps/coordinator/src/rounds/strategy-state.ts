import { endianness } from 'os';
import { StateMap } from '@fl/aggregation';
import { decodeSafetensorsAny, encodeSafetensorsSegments } from '@fl/models';

/**
 * A strategy's server-side state as a checkpoint holds it: safetensors with
 * one tensor per buffer, little endian: F32 for a float32 buffer (the
 * model-shaped state), U8 for a float64 one (the format has no F64 here);
 * the strategy's name in the metadata so that state is never given to
 * another strategy. Checkpoints written before the model-shaped state became
 * float32 have the format 'f64-le', every buffer a U8 of float64s: they are
 * still read.
 */
const FORMAT = 'typed-le';
const FORMAT_F64 = 'f64-le';
const HOST_IS_LE = endianness() === 'LE';

export class StrategyStateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StrategyStateError';
  }
}

/** Null when there is no state to keep (stateless strategies, FedAvgM without momentum). */
export function encodeStrategyState(strategy: string, state: StateMap): Buffer | null {
  const segments = strategyStateSegments(strategy, state);
  return segments && Buffer.concat(segments);
}

/**
 * The bytes of `encodeStrategyState` as segments to be written one after the
 * other: the header, then views on the state's own buffers on a little-endian
 * host (a large model's FedOpt state is twice the model: it is never
 * copied whole to be stored). Null when there is no state.
 */
export function strategyStateSegments(strategy: string, state: StateMap): Buffer[] | null {
  if (state.size === 0) return null;
  const tensors = new Map<string, { dtype: 'U8'; shape: number[]; data: Uint8Array } | { dtype: 'F32'; shape: number[]; data: Float32Array }>();
  for (const [key, values] of state) {
    tensors.set(key, values instanceof Float32Array ? { dtype: 'F32', shape: [values.length], data: values } : { dtype: 'U8', shape: [values.byteLength], data: toLittleEndian(values) });
  }
  return encodeSafetensorsSegments(tensors, { strategy, format: FORMAT });
}

/** The state saved by `encodeStrategyState` for `strategy`; throws StrategyStateError naming what does not fit. */
export function decodeStrategyState(strategy: string, buf: Buffer): StateMap {
  let decoded: ReturnType<typeof decodeSafetensorsAny>;
  try {
    decoded = decodeSafetensorsAny(buf);
  } catch (err) {
    throw new StrategyStateError(`strategy state is not readable: ${(err as Error).message}`);
  }
  const { tensors, metadata } = decoded;
  if (metadata.format !== FORMAT && metadata.format !== FORMAT_F64) throw new StrategyStateError(`strategy state has format ${JSON.stringify(metadata.format)}, expected '${FORMAT}' (or the older '${FORMAT_F64}')`);
  if (metadata.strategy !== strategy) throw new StrategyStateError(`strategy state was saved by ${JSON.stringify(metadata.strategy)}, not by ${strategy}`);
  const out: StateMap = new Map();
  for (const [key, t] of tensors) {
    if (t.dtype === 'F32' && metadata.format === FORMAT) out.set(key, t.data);
    else if (t.dtype === 'U8' && t.data.byteLength % 8 === 0) out.set(key, fromLittleEndian(t.data));
    else throw new StrategyStateError(`strategy state '${key}' is neither a float32 nor a float64 buffer`);
  }
  return out;
}

function toLittleEndian(values: Float64Array): Uint8Array {
  if (HOST_IS_LE) return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  const out = new Uint8Array(values.byteLength);
  const view = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) view.setFloat64(i * 8, values[i], true);
  return out;
}

/**
 * A view on the bytes where they are 8-byte aligned on a little-endian host
 * (a large state read back into one buffer: no second copy), else a copy: the
 * bytes may sit at any offset, and a Float64Array needs 8-byte alignment.
 */
function fromLittleEndian(bytes: Uint8Array): Float64Array {
  if (HOST_IS_LE && bytes.byteOffset % 8 === 0) return new Float64Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 8);
  const out = new Float64Array(bytes.byteLength / 8);
  if (HOST_IS_LE) {
    new Uint8Array(out.buffer).set(bytes);
    return out;
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < out.length; i++) out[i] = view.getFloat64(i * 8, true);
  return out;
}
