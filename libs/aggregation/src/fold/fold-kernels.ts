import { Bytes, encodeModule, F32, F64, I32, op, V128, ValueType, WasmFunction } from './wasm-encoder';

/**
 * The WebAssembly SIMD kernels of the weighted fold, over float32 buffers in
 * the instance's memory (byte addresses, byte counts multiple of 64):
 *
 *   fold(dst, src, x, bytes, w) -> i32   dst = src + fl32(w * x), four lanes at a time,
 *                                        four vectors per iteration; returns 1 when a
 *                                        new value may not be finite (see below)
 *   first(dst, x, bytes, w) -> i32       dst = fl32(w * x), the same for the first term
 *   mean(dst, src, bytes, total)         dst = fl32(src / total), the division in float64
 *   mean32(dst, src, bytes, total)       the same in float32 for total <= 2^24 (exact in
 *                                        float32): a correctly rounded float32 quotient
 *                                        is the rounded float64 one, four lanes at a time
 *
 * They do, lane by lane, the IEEE operations of the JavaScript fallback in
 * weighted-sum.ts, so both give the same bits. The finiteness test costs one
 * addition per vector: every new value is added into one of four running
 * vectors, which become non-finite when a new value is (NaN and infinities
 * stick) and, very rarely, when finite values overflow; the caller then looks
 * at the values themselves.
 */
export interface FoldKernels {
  fold(dst: number, src: number, x: number, bytes: number, weight: number): number;
  first(dst: number, x: number, bytes: number, weight: number): number;
  mean(dst: number, src: number, bytes: number, total: number): void;
  mean32(dst: number, src: number, bytes: number, total: number): void;
}

/** Bytes per loop iteration of `fold`: callers pad their buffers to it. */
export const FOLD_STEP_BYTES = 64;

/** `fold`, or `first` without a source: the sum starts at the first term, as numpy's reduce does. */
function foldFunction(withSource: boolean): WasmFunction {
  const params: ValueType[] = withSource ? [I32, I32, I32, I32, F32] : [I32, I32, I32, F32];
  const [dst, src, x, n, w] = withSource ? [0, 1, 2, 3, 4] : [0, -1 /* none */, 1, 2, 3];
  const [i, wv, t, acc0] = [params.length, params.length + 1, params.length + 2, params.length + 3];
  const body: Bytes[] = [op.localGet(w), op.f32x4Splat, op.localSet(wv), op.block, op.loop, op.localGet(i), op.localGet(n), op.i32GeU, op.brIf(1)];
  for (let k = 0; k < FOLD_STEP_BYTES / 16; k++) {
    const offset = 16 * k;
    body.push(op.localGet(dst), op.localGet(i), op.i32Add);
    if (withSource) body.push(op.localGet(src), op.localGet(i), op.i32Add, op.v128Load(offset));
    body.push(op.localGet(x), op.localGet(i), op.i32Add, op.v128Load(offset), op.localGet(wv), op.f32x4Mul);
    if (withSource) body.push(op.f32x4Add);
    body.push(op.localTee(t), op.v128Store(offset), op.localGet(acc0 + k), op.localGet(t), op.f32x4Add, op.localSet(acc0 + k));
  }
  body.push(op.localGet(i), op.i32Const(FOLD_STEP_BYTES), op.i32Add, op.localSet(i), op.br(0), op.end, op.end);
  for (let k = 1; k < 4; k++) body.push(op.localGet(acc0), op.localGet(acc0 + k), op.f32x4Add, op.localSet(acc0));
  // acc - acc is +0 in every lane exactly when acc is finite.
  body.push(op.localGet(acc0), op.localGet(acc0), op.f32x4Sub, op.v128AnyTrue);
  return { name: withSource ? 'fold' : 'first', params, results: [I32], locals: [I32, V128, V128, V128, V128, V128, V128], body };
}

const HIGH_HALF = [8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15];
const LOW_HALVES = [0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23];

function meanFunction(): WasmFunction {
  const [dst, src, n, total] = [0, 1, 2, 3];
  const [i, tv, v] = [4, 5, 6];
  const half = (high: boolean): Bytes[] => [
    op.localGet(v),
    ...(high ? [op.localGet(v), op.i8x16Shuffle(HIGH_HALF)] : []),
    op.f64x2PromoteLowF32x4, op.localGet(tv), op.f64x2Div, op.f32x4DemoteF64x2Zero,
  ];
  const body: Bytes[] = [
    op.localGet(total), op.f64x2Splat, op.localSet(tv),
    op.block, op.loop, op.localGet(i), op.localGet(n), op.i32GeU, op.brIf(1),
    op.localGet(dst), op.localGet(i), op.i32Add,
    op.localGet(src), op.localGet(i), op.i32Add, op.v128Load(), op.localSet(v),
    ...half(false), ...half(true), op.i8x16Shuffle(LOW_HALVES), op.v128Store(),
    op.localGet(i), op.i32Const(16), op.i32Add, op.localSet(i), op.br(0), op.end, op.end,
  ];
  return { name: 'mean', params: [I32, I32, I32, F64], results: [], locals: [I32, V128, V128], body };
}

function mean32Function(): WasmFunction {
  const [dst, src, n, total] = [0, 1, 2, 3];
  const [i, tv] = [4, 5];
  const body: Bytes[] = [
    op.localGet(total), op.f32x4Splat, op.localSet(tv),
    op.block, op.loop, op.localGet(i), op.localGet(n), op.i32GeU, op.brIf(1),
    op.localGet(dst), op.localGet(i), op.i32Add,
    op.localGet(src), op.localGet(i), op.i32Add, op.v128Load(), op.localGet(tv), op.f32x4Div, op.v128Store(),
    op.localGet(i), op.i32Const(16), op.i32Add, op.localSet(i), op.br(0), op.end, op.end,
  ];
  return { name: 'mean32', params: [I32, I32, I32, F32], results: [], locals: [I32, V128], body };
}

/** The kernels' module, encoded (kernel-memory.ts compiles it once). */
export function foldKernelsModule(): Uint8Array {
  return encodeModule([foldFunction(true), foldFunction(false), meanFunction(), mean32Function()]);
}
