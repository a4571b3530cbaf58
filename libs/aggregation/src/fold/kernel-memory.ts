import { FoldKernels, foldKernelsModule } from './fold-kernels';

/**
 * WebAssembly memories for the fold kernels, one per running sum, and the
 * last one released kept for the next: rounds follow one another, and a fresh
 * WebAssembly memory is a fresh mapping whose every page faults on first
 * touch, two models' worth per round (on the project's machine 8 MiB took 80
 * to 300 ms to touch, when the fold of 10 updates of a million values takes
 * about 4 ms).
 */
export interface KernelMemory {
  kernels: FoldKernels;
  buffer: ArrayBuffer;
}

/** The part of the WebAssembly JavaScript API used here (the project's libraries carry no DOM types). */
interface WasmApi {
  Module: new (bytes: Uint8Array) => WasmModule;
  Instance: new (module: WasmModule, imports: object) => { exports: object };
  Memory: new (descriptor: { initial: number; maximum: number }) => { buffer: ArrayBuffer };
}
type WasmModule = { readonly __brand: 'WebAssembly.Module' };

const WASM_PAGE = 1 << 16;
const WASM_MAX_PAGES = 1 << 16;
/** How long a released memory is kept for reuse. */
const IDLE_RELEASE_MS = 60_000;
/** A memory is reused only for a request of at least half its size (less this), so that a small model does not keep a large one's memory. */
const REUSE_SLACK_BYTES = 1 << 20;

let compiled: WasmModule | null | undefined;
let idle: KernelMemory | null = null;
let idleTimer: NodeJS.Timeout | undefined;

/**
 * The kernels with a memory of their own of at least `bytes`, or null where
 * WebAssembly SIMD is missing or the memory cannot be had (beyond 4 GiB, or no
 * address space): the fold then runs in JavaScript. The memory may be the one
 * released last, as its user left it.
 */
export function acquireKernelMemory(bytes: number): KernelMemory | null {
  if (idle && idle.buffer.byteLength >= bytes && idle.buffer.byteLength <= 2 * bytes + REUSE_SLACK_BYTES) {
    const reused = idle;
    dropIdle();
    return reused;
  }
  const api = (globalThis as unknown as { WebAssembly?: WasmApi }).WebAssembly;
  const module = api && kernelModule(api);
  const pages = Math.ceil(bytes / WASM_PAGE);
  if (!api || !module || pages > WASM_MAX_PAGES) return null;
  try {
    const memory = new api.Memory({ initial: pages, maximum: pages });
    return { kernels: new api.Instance(module, { env: { memory } }).exports as FoldKernels, buffer: memory.buffer };
  } catch {
    return null;
  }
}

/** Keeps a memory its user is done with for the next acquire, for IDLE_RELEASE_MS (one at a time: the last released). */
export function releaseKernelMemory(memory: KernelMemory): void {
  dropIdle();
  idle = memory;
  idleTimer = setTimeout(dropIdle, IDLE_RELEASE_MS);
  idleTimer.unref();
}

function kernelModule(api: WasmApi): WasmModule | null {
  if (compiled === undefined) {
    try {
      compiled = new api.Module(foldKernelsModule());
    } catch {
      compiled = null; // no SIMD in this engine
    }
  }
  return compiled;
}

function dropIdle(): void {
  idle = null;
  if (idleTimer) clearTimeout(idleTimer);
  idleTimer = undefined;
}
