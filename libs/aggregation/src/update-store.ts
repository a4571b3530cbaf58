import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ModelLayout } from './model-layout';
import { WeightMap } from './weights';

export interface UpdateStoreOptions {
  /** Bytes of update values held in memory; the updates beyond go to temporary files. */
  memoryBudgetBytes: number;
  /** Where the temporary directory is made; default the system's temporary directory. */
  directory?: string;
}

const BYTES = Float32Array.BYTES_PER_ELEMENT;

/**
 * The updates of one round for rules that need all of them at once (median,
 * trimmed mean, Krum, Bulyan). Each update is kept as one flat float32 vector,
 * in memory while the budget allows and in a temporary file after that;
 * `forEachBlock` then hands out all updates' values for one range of
 * coordinates at a time, so a rule never needs more than one block of every
 * update. Files are positional reads of one block each; `dispose` removes them.
 *
 * File I/O is synchronous: combining is CPU-bound and reads one block per
 * update in turn, and keeping it synchronous keeps the rules plain loops.
 */
export class UpdateStore {
  private readonly memory: (Float32Array | null)[] = [];
  private readonly files: (number | null)[] = [];
  private readonly exampleCounts: number[] = [];
  private residentBytes = 0;
  private dir: string | null = null;
  private disposed = false;

  constructor(
    readonly layout: ModelLayout,
    private readonly options: UpdateStoreOptions,
  ) {
    if (!(options.memoryBudgetBytes >= 0)) throw new Error(`memoryBudgetBytes must be a number >= 0, got ${options.memoryBudgetBytes}`);
  }

  get count(): number {
    return this.memory.length;
  }

  /** How many updates went to disk. */
  get spilled(): number {
    return this.files.filter((f) => f !== null).length;
  }

  /** The temporary directory, once something was spilled. */
  get spillDirectory(): string | null {
    return this.dir;
  }

  get examples(): readonly number[] {
    return this.exampleCounts;
  }

  /** Keeps one (already checked) update. */
  add(update: WeightMap, examples: number): void {
    this.live();
    const bytes = this.layout.size * BYTES;
    if (this.residentBytes + bytes <= this.options.memoryBudgetBytes) {
      this.memory.push(this.layout.flatten(update));
      this.files.push(null);
      this.residentBytes += bytes;
    } else {
      this.dir ??= mkdtempSync(join(this.options.directory ?? tmpdir(), 'fl-aggregation-'));
      const fd = openSync(join(this.dir, `update-${this.memory.length}.f32`), 'w+');
      try {
        for (const e of this.layout.entries) {
          const d = update.get(e.name)!.data;
          writeAll(fd, new Uint8Array(d.buffer, d.byteOffset, d.byteLength), e.offset * BYTES);
        }
      } catch (err) {
        closeSync(fd);
        throw err;
      }
      this.memory.push(null);
      this.files.push(fd);
    }
    this.exampleCounts.push(examples);
  }

  /**
   * Calls `fn(start, length, rows)` for consecutive blocks of coordinates;
   * rows[k] holds update k's values start..start+length-1. The row arrays are
   * reused from block to block: copy what must outlive the call.
   */
  forEachBlock(blockValues: number, fn: (start: number, length: number, rows: Float32Array[]) => void, which?: readonly number[]): void {
    runToEnd(this.blocks(blockValues, fn, which));
  }

  /**
   * forEachBlock as a generator that pauses after each block, so that a rule
   * over a large model can let the event loop run between blocks (see
   * runYielding); runToEnd drives it without pausing.
   */
  *blocks(blockValues: number, fn: (start: number, length: number, rows: Float32Array[]) => void, which?: readonly number[]): Generator<void, void> {
    this.live();
    const ids = which ?? this.memory.map((_, i) => i);
    const size = this.layout.size;
    const block = Math.max(1, Math.min(size, Math.floor(blockValues)));
    const buffers = ids.map((k) => (this.files[k] !== null ? new Float32Array(block) : null));
    const rows: Float32Array[] = new Array(ids.length);
    for (let start = 0; start < size; start += block) {
      const length = Math.min(block, size - start);
      for (let r = 0; r < ids.length; r++) {
        const k = ids[r];
        const mem = this.memory[k];
        if (mem) {
          rows[r] = mem.subarray(start, start + length);
        } else {
          const buf = buffers[r]!.subarray(0, length);
          readAll(this.files[k]!, new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength), start * BYTES);
          rows[r] = buf;
        }
      }
      fn(start, length, rows);
      yield;
    }
  }

  /** Closes and removes the spill files and lets go of the in-memory updates. Safe to call twice. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const fd of this.files) if (fd !== null) closeSync(fd);
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
    this.memory.length = 0;
    this.files.length = 0;
  }

  private live(): void {
    if (this.disposed) throw new Error('this update store was disposed');
  }
}

function writeAll(fd: number, bytes: Uint8Array, position: number): void {
  let done = 0;
  while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done, position + done);
}

function readAll(fd: number, bytes: Uint8Array, position: number): void {
  let done = 0;
  while (done < bytes.length) {
    const n = readSync(fd, bytes, done, bytes.length - done, position + done);
    if (n === 0) throw new Error(`spill file ended early at byte ${position + done}`);
    done += n;
  }
}

/**
 * Runs `work` over 0..length-1 a slice of `sliceValues` at a time, pausing
 * between slices (not after the last): the loop of every step that a large
 * model makes take seconds (see runYielding).
 */
export function* inSlices(length: number, sliceValues: number, work: (from: number, to: number) => void): Generator<void, void> {
  for (let from = 0; from < length; from += sliceValues) {
    const to = Math.min(length, from + sliceValues);
    work(from, to);
    if (to < length) yield;
  }
}

/**
 * Writes every page of `arrays` (one value per 4 KiB, written back unchanged),
 * `sliceValues` values at a time, pausing after each slice: a fresh buffer's
 * pages are then faulted in a little at a time (see FitAggregation.prefault).
 * Stops at the first pause where `live()` says the arrays are no longer used.
 */
export function* prefaultPages(arrays: Iterable<Float64Array | Float32Array>, sliceValues: number, live: () => boolean = () => true): Generator<void, void> {
  for (const a of arrays) {
    const step = 4096 / a.BYTES_PER_ELEMENT;
    for (let from = 0; from < a.length; from += sliceValues) {
      if (!live()) return;
      const to = Math.min(a.length, from + sliceValues);
      for (let i = Math.ceil(from / step) * step; i < to; i += step) a[i] = a[i];
      yield;
    }
  }
}

/**
 * Runs generators given to it one after another, each letting the event loop
 * run at its pauses (runYielding): for work on shared sums that must not
 * interleave. `busy` while one is under way or waiting.
 */
export class OneAtATime {
  private queued = 0;
  private tail: Promise<unknown> = Promise.resolve();

  get busy(): boolean {
    return this.queued > 0;
  }

  run<T>(steps: () => Generator<void, T>): Promise<T> {
    this.queued++;
    const done = this.tail.then(() => runYielding(steps())).finally(() => this.queued--);
    this.tail = done.catch(() => undefined);
    return done;
  }
}

/** Runs a rule written as a generator (pausing between blocks) to its end, at once. */
export function runToEnd<T>(steps: Generator<void, T>): T {
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}

/**
 * Runs a rule written as a generator to its end, letting the event loop run
 * at each pause: over a large model a rule takes seconds, longer than the
 * broker waits for the connection's heartbeat.
 */
export async function runYielding<T>(steps: Generator<void, T>): Promise<T> {
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
    await new Promise((resolve) => setImmediate(resolve));
  }
}
