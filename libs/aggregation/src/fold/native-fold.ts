import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

/**
 * The native fold (libs/aggregation/native/fold.cc, built into
 * dist/native/fold.node by `npm run build` and `npm test`): the weighted fold
 * reading each update where it lies, with the same float32 operations, and so
 * the same bits, as the WebAssembly kernels and the JavaScript loop. Where it
 * is not built (no C++ compiler at build time) or FL_NATIVE_FOLD=off, the
 * aggregation uses the WebAssembly kernels.
 */
export interface NativeFold {
  /** dst[offset + i] = fl32(src[offset + i] + fl32(weight * x[i])), or fl32(weight * x[i]) with src null; true when a new value may not be finite. */
  fold(dst: Float32Array, src: Float32Array | null, offset: number, x: Float32Array, weight: number): boolean;
  /** fold's answer for the same arguments, writing nothing. */
  check(src: Float32Array | null, offset: number, x: Float32Array, weight: number): boolean;
  /** dst[i] = fl32(src[i] / total); dst may be src. */
  mean(dst: Float32Array, src: Float32Array, total: number): void;
  /** Advises the buffer's 2 MiB-aligned part for huge pages; the byte offset of its first 2 MiB boundary, 0 when no huge page fits. */
  hugePages(buffer: ArrayBuffer): number;
}

export interface NativeFoldStatus {
  available: boolean;
  /** The addon's file, when found. */
  path?: string;
  /** Why it is not used, when it is not. */
  reason?: string;
}

const HUGE_PAGE = 2 << 20;
const ADDON = join('dist', 'native', 'fold.node');
/** How long a released sum memory is kept for reuse. */
const IDLE_RELEASE_MS = 60_000;
/** A memory is reused only for a request of at least half its size (less this), so that a small model does not keep a large one's memory. */
const REUSE_SLACK_BYTES = 1 << 20;

let loaded: { fold: NativeFold | null; status: NativeFoldStatus } | undefined;
let idle: Float32Array | null = null;
let idleTimer: NodeJS.Timeout | undefined;

/** The addon, found by walking up from this file to a folder holding dist/native/fold.node (the repository's or the image's root). */
export function nativeFold(): NativeFold | null {
  return load().fold;
}

export function nativeFoldStatus(): NativeFoldStatus {
  return { ...load().status };
}

function load(): { fold: NativeFold | null; status: NativeFoldStatus } {
  if (loaded) return loaded;
  if (process.env.FL_NATIVE_FOLD === 'off') return (loaded = { fold: null, status: { available: false, reason: 'FL_NATIVE_FOLD=off' } });
  let dir = __dirname;
  for (;;) {
    const candidate = join(dir, ADDON);
    if (existsSync(candidate)) {
      try {
        const module = { exports: {} as NativeFold };
        // dlopen, not require: jest's module registry would load it once per test file.
        process.dlopen(module, candidate);
        return (loaded = { fold: module.exports, status: { available: true, path: candidate } });
      } catch (e) {
        return (loaded = { fold: null, status: { available: false, path: candidate, reason: `${candidate} did not load: ${(e as Error).message}` } });
      }
    }
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return (loaded = { fold: null, status: { available: false, reason: `${ADDON} not built (npm run build builds it where a C++ compiler is installed)` } });
}

/**
 * `values` float32 values in fresh memory advised for huge pages when it spans
 * at least one: the buffer is 2 MiB larger than asked (rounded up to 2 MiB)
 * and the array starts at its first 2 MiB boundary (the extra is never
 * touched, so it takes address space, not memory). Zero-filled, or with
 * `uninitialized` left as malloc gives it (no fill pass) for a caller that
 * writes every value before any is read.
 */
export function hugePageArray(fold: NativeFold, values: number, uninitialized = false): Float32Array {
  const bytes = 4 * values;
  const fresh = (n: number) => (uninitialized ? Buffer.allocUnsafeSlow(n).buffer : new ArrayBuffer(n));
  if (bytes < HUGE_PAGE) return new Float32Array(fresh(bytes), 0, values);
  const buffer = fresh(Math.ceil(bytes / HUGE_PAGE) * HUGE_PAGE + HUGE_PAGE);
  return new Float32Array(buffer, fold.hugePages(buffer), values);
}

/** A sum memory of at least `values` float32 values: the one released last when it fits, else fresh (hugePageArray). Its contents are the last user's. */
export function acquireSumMemory(fold: NativeFold, values: number): Float32Array {
  if (idle && idle.length >= values && 4 * idle.length <= 8 * values + REUSE_SLACK_BYTES) {
    const reused = new Float32Array(idle.buffer, idle.byteOffset, values);
    dropIdle();
    return reused;
  }
  return hugePageArray(fold, values);
}

/** Keeps a sum memory its user is done with for the next acquire, for IDLE_RELEASE_MS (one at a time: the last released). */
export function releaseSumMemory(memory: Float32Array): void {
  dropIdle();
  idle = memory;
  idleTimer = setTimeout(dropIdle, IDLE_RELEASE_MS);
  idleTimer.unref();
}

function dropIdle(): void {
  idle = null;
  if (idleTimer) clearTimeout(idleTimer);
  idleTimer = undefined;
}
