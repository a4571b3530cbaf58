/**
 * A WebAssembly binary encoder for the few instructions the fold kernels use
 * (MVP control flow and locals, i32 arithmetic, 128-bit SIMD loads, stores and
 * float lanes). The kernels are assembled from it at run time, so the project
 * needs no toolchain at build time and downloads nothing at run time.
 * Opcodes and encodings are those of the WebAssembly 2.0 core specification
 * (binary format, sections 5.4.x); each function body is a flat list of bytes.
 */

export type Bytes = readonly number[];

/** Value types (5.3.1). */
export const I32 = 0x7f;
export const F32 = 0x7d;
export const F64 = 0x7c;
export const V128 = 0x7b;
export type ValueType = typeof I32 | typeof F32 | typeof F64 | typeof V128;

/** Unsigned LEB128. */
export function u32(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

/** Signed LEB128. */
export function s32(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const byte = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (byte & 0x40) === 0) || (n === -1 && (byte & 0x40) !== 0)) {
      out.push(byte);
      return out;
    }
    out.push(byte | 0x80);
  }
}

const vector = (items: Bytes[]): number[] => [...u32(items.length), ...items.flat()];
const name = (s: string): number[] => vector([...Buffer.from(s, 'utf8')].map((b) => [b]));
const section = (id: number, content: Bytes): number[] => [id, ...u32(content.length), ...content];
const simd = (opcode: number, ...immediates: number[]): number[] => [0xfd, ...u32(opcode), ...immediates];
/** memarg of a 16-byte access: alignment hint 2^4, constant byte offset. */
const memarg16 = (offset: number): number[] => [4, ...u32(offset)];

/** Instructions, each as its bytes. */
export const op = {
  block: [0x02, 0x40],
  loop: [0x03, 0x40],
  end: [0x0b],
  br: (depth: number) => [0x0c, ...u32(depth)],
  brIf: (depth: number) => [0x0d, ...u32(depth)],
  localGet: (i: number) => [0x20, ...u32(i)],
  localSet: (i: number) => [0x21, ...u32(i)],
  localTee: (i: number) => [0x22, ...u32(i)],
  i32Const: (n: number) => [0x41, ...s32(n)],
  i32GeU: [0x4f],
  i32Add: [0x6a],
  v128Load: (offset = 0) => simd(0x00, ...memarg16(offset)),
  v128Store: (offset = 0) => simd(0x0b, ...memarg16(offset)),
  /** i8x16.shuffle with 16 lane indices into the concatenation of both operands. */
  i8x16Shuffle: (lanes: readonly number[]) => simd(0x0d, ...lanes),
  f32x4Splat: simd(0x13),
  f64x2Splat: simd(0x14),
  v128AnyTrue: simd(0x53),
  f32x4DemoteF64x2Zero: simd(0x5e),
  f64x2PromoteLowF32x4: simd(0x5f),
  f32x4Add: simd(0xe4),
  f32x4Sub: simd(0xe5),
  f32x4Mul: simd(0xe6),
  f32x4Div: simd(0xe7),
  f64x2Div: simd(0xf3),
};

export interface WasmFunction {
  name: string;
  params: ValueType[];
  results: ValueType[];
  /** Locals beyond the parameters, numbered after them. */
  locals: ValueType[];
  body: Bytes[];
}

/**
 * A module that imports its memory as env.memory (so each user sizes its own)
 * and exports the given functions under their names.
 */
export function encodeModule(functions: WasmFunction[]): Uint8Array {
  const types = functions.map((f) => [0x60, ...vector(f.params.map((t) => [t])), ...vector(f.results.map((t) => [t]))]);
  const memoryImport = [...name('env'), ...name('memory'), 0x02, 0x00, ...u32(1)];
  const exported = functions.map((f, i) => [...name(f.name), 0x00, ...u32(i)]);
  const codes = functions.map((f) => {
    const body = [...vector(f.locals.map((t) => [1, t])), ...f.body.flat(), ...op.end];
    return [...u32(body.length), ...body];
  });
  return new Uint8Array([
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...section(1, vector(types)),
    ...section(2, vector([memoryImport])),
    ...section(3, vector(functions.map((_, i) => u32(i)))),
    ...section(7, vector(exported)),
    ...section(10, vector(codes)),
  ]);
}
