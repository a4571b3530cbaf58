import { UpdateRejectedError, WeightMap } from '../weights';
import { FOLD_STEP_BYTES } from './fold-kernels';
import { acquireKernelMemory, KernelMemory, releaseKernelMemory } from './kernel-memory';
import { acquireSumMemory, hugePageArray, NativeFold, nativeFold, releaseSumMemory } from './native-fold';

/** Values per parameter are padded to this, so kernels never see a partial step. */
const PAD = FOLD_STEP_BYTES / 4;
/** Values copied into the kernels' memory per call: 256 KiB, well inside a core's L2 cache. */
const CHUNK = 1 << 16;
/** Below this many values the JavaScript loop is as fast and needs no WebAssembly memory. */
const WASM_MIN_VALUES = 1 << 14;

export type FoldEngine = 'native' | 'wasm' | 'js';

export interface WeightedSumOptions {
  /**
   * Force an engine (tests compare them); by default the native fold where it
   * is built (native-fold.ts), else WebAssembly SIMD for models of 16 Ki
   * values and more, else JavaScript.
   */
  engine?: FoldEngine;
}

const padded = (n: number) => Math.ceil(n / PAD) * PAD;

/**
 * The running example-weighted sum of a round's updates,
 *   sum = sum_k fl32(n_k * w_k), added in arrival order,
 * in float32 as Flower's numpy aggregate does, with the same operations. Two
 * float32 buffers the size of the model take turns: an update is folded from
 * one into the other and the new sum becomes current only once every value
 * came out finite, so a rejected update changes nothing, whatever the point
 * at which it fails, without a separate validation pass over the update.
 * Memory is two models' worth (as one float64 sum was), whatever the number
 * of updates.
 *
 * The fold runs natively (native-fold.ts: the update read where it lies, the
 * new sum written with non-temporal stores, the sums and the result on huge
 * pages), or where the addon is not built as WebAssembly SIMD (fold-kernels.ts)
 * over 256 KiB chunks of the update copied into the kernels' memory, or as a
 * JavaScript loop for small models or where WebAssembly SIMD is missing: all
 * three give the same bits.
 * Accuracy: against a float64 sum, each of the N additions may round, so the
 * error is below about N * 2^-24 of sum_k n_k |w_k| (numpy's sequential float32
 * reduce has the same bound), and typically sqrt(N) times smaller; the unit
 * tests hold the mean of 100 updates within 1e-6 of that scale.
 */
export class WeightedSum {
  readonly engine: FoldEngine;
  private readonly names: string[];
  private readonly lengths: number[];
  /** Offset of each parameter in the flat buffers, in values. */
  private readonly offsets: number[];
  private readonly size: number;
  private current: Float32Array;
  private next: Float32Array;
  private wasm: (KernelMemory & { scratch: Float32Array }) | null;
  private native: { fold: NativeFold; memory: Float32Array } | null = null;
  /** Until an update is in, `current` holds nothing (a reused memory's leftovers): the first one is written, not added. */
  private empty = true;
  private disposed = false;

  constructor(template: WeightMap, options: WeightedSumOptions = {}) {
    this.names = [...template.keys()];
    this.lengths = [...template.values()].map((t) => t.data.length);
    this.offsets = [];
    let size = 0;
    for (const n of this.lengths) {
      this.offsets.push(size);
      size += padded(n);
    }
    this.size = size;
    const fold = options.engine === undefined || options.engine === 'native' ? nativeFold() : null;
    if (options.engine === 'native' && !fold) throw new Error('the native fold is not available here (native-fold.ts: nativeFoldStatus)');
    if (fold) {
      const memory = acquireSumMemory(fold, 2 * size);
      this.engine = 'native';
      this.native = { fold, memory };
      this.wasm = null;
      this.current = memory.subarray(0, size);
      this.next = memory.subarray(size, 2 * size);
      return;
    }
    const wasm = options.engine === 'js' || (options.engine === undefined && size < WASM_MIN_VALUES) ? null : acquireKernelMemory(4 * (CHUNK + 2 * size));
    if (options.engine === 'wasm' && !wasm) throw new Error('WebAssembly SIMD is not available here');
    this.engine = wasm ? 'wasm' : 'js';
    if (wasm) {
      const all = new Float32Array(wasm.buffer);
      this.wasm = { kernels: wasm.kernels, buffer: wasm.buffer, scratch: all.subarray(0, CHUNK) };
      this.current = all.subarray(CHUNK, CHUNK + size);
      this.next = all.subarray(CHUNK + size, CHUNK + 2 * size);
    } else {
      this.wasm = null;
      this.current = new Float32Array(size);
      this.next = new Float32Array(size);
    }
  }

  /**
   * sum += weight * update. The update's layout must have been checked
   * (checkUpdateLayout); its values are checked here: a value or a new sum
   * that is not finite rejects the update (UpdateRejectedError 'non-finite')
   * and leaves the sum as it was.
   */
  add(update: WeightMap, weight: number): void {
    this.live();
    const w = Math.fround(weight);
    for (let p = 0; p < this.names.length; p++) {
      const x = update.get(this.names[p])?.data;
      if (!x || x.length !== this.lengths[p]) throw new Error(`update does not match the layout at '${this.names[p]}'; check it first`);
      if (this.native) {
        if (this.native.fold.fold(this.next, this.empty ? null : this.current, this.offsets[p], x, w)) this.verify(p, x, 0, x.length, w);
      } else if (this.wasm) this.foldWasm(this.wasm, p, x, w);
      else this.foldJs(p, x, w);
    }
    [this.current, this.next] = [this.next, this.current];
    this.empty = false;
  }

  /** fl32(sum / total) per parameter, in fresh arrays (natively: views of one fresh buffer, which nothing else holds). */
  mean(total: number): Map<string, Float32Array> {
    this.live();
    if (this.empty) this.current.fill(0);
    const out = new Map<string, Float32Array>();
    if (this.native) {
      const result = hugePageArray(this.native.fold, this.size, true); // mean writes every value, padding included
      this.native.fold.mean(result, this.current, total);
      for (let p = 0; p < this.names.length; p++) out.set(this.names[p], result.subarray(this.offsets[p], this.offsets[p] + this.lengths[p]));
      return out;
    }
    if (this.wasm) {
      const mean = Number.isInteger(total) && total <= 2 ** 24 ? this.wasm.kernels.mean32 : this.wasm.kernels.mean;
      mean(this.next.byteOffset, this.current.byteOffset, this.size * 4, total);
      for (let p = 0; p < this.names.length; p++) out.set(this.names[p], this.next.slice(this.offsets[p], this.offsets[p] + this.lengths[p]));
      return out;
    }
    for (let p = 0; p < this.names.length; p++) {
      const s = this.current.subarray(this.offsets[p], this.offsets[p] + this.lengths[p]);
      const m = new Float32Array(s.length);
      for (let i = 0; i < s.length; i++) m[i] = s[i] / total;
      out.set(this.names[p], m);
    }
    return out;
  }

  /** Hands the memory on to the next sum (a round's successor); this one is unusable afterwards. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    if (this.wasm) releaseKernelMemory({ kernels: this.wasm.kernels, buffer: this.wasm.buffer });
    if (this.native) releaseSumMemory(this.native.memory);
    this.wasm = null;
    this.native = null;
    this.current = this.next = new Float32Array(0);
  }

  private live(): void {
    if (this.disposed) throw new Error('this weighted sum is disposed');
  }

  private foldWasm(wasm: KernelMemory & { scratch: Float32Array }, p: number, x: Float32Array, w: number): void {
    const { kernels, scratch } = wasm;
    for (let start = 0; start < x.length; start += CHUNK) {
      const n = Math.min(CHUNK, x.length - start);
      scratch.set(n === x.length ? x : x.subarray(start, start + n));
      const steps = padded(n);
      if (steps !== n) scratch.fill(0, n, steps);
      const at = this.offsets[p] + start;
      const dst = this.next.byteOffset + 4 * at;
      const suspect = this.empty
        ? kernels.first(dst, scratch.byteOffset, 4 * steps, w)
        : kernels.fold(dst, this.current.byteOffset + 4 * at, scratch.byteOffset, 4 * steps, w);
      if (suspect) this.verify(p, x, start, n, w);
    }
  }

  private foldJs(p: number, x: Float32Array, w: number): void {
    const src = this.current;
    const dst = this.next;
    const at = this.offsets[p];
    let poison = 0;
    if (this.empty) {
      for (let i = 0; i < x.length; i++) {
        const s = Math.fround(w * x[i]);
        dst[at + i] = s;
        poison += s - s;
      }
    } else {
      for (let i = 0; i < x.length; i++) {
        // One float32 product, one float32 sum: the kernel's operations (the float64 sum of two float32 values rounds to the same float32).
        const s = Math.fround(src[at + i] + Math.fround(w * x[i]));
        dst[at + i] = s;
        poison += s - s;
      }
    }
    if (poison !== 0) this.verify(p, x, 0, x.length, w);
  }

  /** A chunk whose running check tripped: reject on the first value that is not finite, else carry on (finite values whose check overflowed). */
  private verify(p: number, x: Float32Array, start: number, n: number, w: number): void {
    const dst = this.next;
    const at = this.offsets[p] + start;
    for (let i = 0; i < n; i++) {
      if (Number.isFinite(dst[at + i])) continue;
      const name = this.names[p];
      if (!Number.isFinite(x[start + i])) throw new UpdateRejectedError(`parameter '${name}' holds a non-finite value at index ${start + i}`, 'non-finite');
      throw new UpdateRejectedError(
        `parameter '${name}' at index ${start + i}: ${w} x ${x[start + i]} takes the float32 sum of the round beyond 3.4e38`,
        'non-finite',
      );
    }
  }
}
