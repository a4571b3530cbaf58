import { checkUpdateSteps, inSlices, NativeFold, nativeFold, OneAtATime, prefaultPages, runToEnd, runYielding, STEP_SLICE_VALUES, UpdateRejectedError, WeightMap } from '@fl/aggregation';
import { allocateSafetensors, decodeSafetensors, NamedTensors } from '@fl/models';

/** A model's layout: each parameter's shape, by name. */
export type WeightLayout = ReadonlyMap<string, readonly number[]>;

export function layoutOf(weights: NamedTensors): WeightLayout {
  return new Map([...weights].map(([name, t]) => [name, [...t.shape]]));
}

/**
 * FedAvg for large models, w = sum_k n_k w_k / sum_k n_k, folded into one
 * float32 sum the size of the model, in place: the sum is a safetensors
 * buffer, so that the average computed in it at the end is the new global
 * weights ready to send and store, with no copy. Memory: the sum and the
 * update being folded, nothing else (the strategies' fold, WeightedSum, takes
 * two sums so that a bad update can be dropped half-way; here every update is
 * checked in a first pass and folded in a second, so a rejected update changes
 * nothing either). Same operations as WeightedSum's (one float32 product, one
 * float32 sum per value, in arrival order), so the same bits. Both passes and
 * the division run in the native fold where it is built (native-fold.ts), else
 * as JavaScript loops.
 */
export class InPlaceFedAvg {
  private sum: { buf: Buffer; tensors: NamedTensors } | null = null;
  private total = 0;
  private count = 0;
  private finished = false;
  private readonly native: NativeFold | null;
  private readonly adds = new OneAtATime();

  /** With a norm bound, the global weights the updates are measured against (kept, so the model is held once more). */
  private readonly bound: { maxL2Norm: number; reference: NamedTensors } | null;

  constructor(
    private readonly layout: WeightLayout,
    options: { engine?: 'native' | 'js'; bound?: { maxL2Norm: number; reference: NamedTensors } } = {},
  ) {
    this.bound = options.bound ?? null;
    this.native = options.engine === 'js' ? null : nativeFold();
    if (options.engine === 'native' && !this.native) throw new Error('the native fold is not available here');
  }

  /** Which code folds: the native fold where it is built, else JavaScript. */
  get engine(): 'native' | 'js' {
    return this.native ? 'native' : 'js';
  }

  get updates(): number {
    return this.count;
  }

  get examples(): number {
    return this.total;
  }

  /**
   * Checks one update (layout, example count, finite values and sums, and
   * with a bound the L2 norm of its difference to the global weights, as the
   * strategies do) and folds it in; throws UpdateRejectedError and changes
   * nothing if it is bad.
   */
  add(attachment: Buffer, examples: number, registeredExamples?: number): void {
    if (this.adds.busy) throw new Error('an update is still being added');
    runToEnd(this.adding(attachment, examples, registeredExamples, Infinity));
  }

  /**
   * The same as add, `sliceValues` values at a time (STEP_SLICE_VALUES unless
   * given), letting the event loop run between slices: a 1 GiB update takes
   * about a second to check and fold here. The same bits as add; calls are
   * taken one after another, in the order made (add and finish throw while
   * one is under way).
   */
  addAsync(attachment: Buffer, examples: number, registeredExamples?: number, sliceValues = STEP_SLICE_VALUES): Promise<void> {
    return this.adds.run(() => this.adding(attachment, examples, registeredExamples, sliceValues));
  }

  private *adding(attachment: Buffer, examples: number, registeredExamples: number | undefined, sliceValues: number): Generator<void, void> {
    if (this.finished) throw new Error('this aggregation is finished');
    if (!Number.isInteger(examples) || examples <= 0) throw new UpdateRejectedError(`example count must be a positive integer, got ${examples}`, 'bad-example-count');
    if (registeredExamples !== undefined && examples > registeredExamples) {
      throw new UpdateRejectedError(`example count ${examples} is beyond the ${registeredExamples} the worker registered`, 'too-many-examples');
    }
    const update = decodeSafetensors(attachment).tensors;
    for (const name of update.keys()) if (!this.layout.has(name)) throw new UpdateRejectedError(`unexpected parameter '${name}'`, 'unexpected-parameter');
    for (const [name, shape] of this.layout) {
      const u = update.get(name);
      if (!u) throw new UpdateRejectedError(`missing parameter '${name}'`, 'missing-parameter');
      if (u.shape.length !== shape.length || u.shape.some((d, i) => d !== shape[i])) {
        throw new UpdateRejectedError(`parameter '${name}' has shape [${u.shape}], expected [${shape}]`, 'wrong-shape');
      }
    }
    if (this.bound) {
      const reference = this.bound.reference as WeightMap;
      yield* checkUpdateSteps(reference, update as WeightMap, examples, { maxL2Norm: this.bound.maxL2Norm, reference }, sliceValues);
    }
    const w = Math.fround(examples);
    // The first update is written, not added (0 + x would turn -0 into +0), whether or not prefault allocated the sum.
    const sum = this.count === 0 ? undefined : this.sum!.tensors;
    for (const [name, u] of update) yield* checkFinite(name, u.data, sum?.get(name)!.data, w, this.native, sliceValues);
    if (this.finished) throw new Error('this aggregation is finished');
    // Allocated at the first update that passes, unless prefault did: untouched pages of the zeroed buffer cost nothing until then.
    this.sum ??= allocateSafetensors(this.layout);
    for (const [name, u] of update) {
      const s = this.sum.tensors.get(name)!.data;
      yield* inSlices(u.data.length, sliceValues, (from, to) => {
        // Disposed meanwhile (the round abandoned): the sum is no longer anyone's.
        if (this.finished) throw new Error('this aggregation is finished');
        const x = u.data.subarray(from, to);
        if (this.native) this.native.fold(s, sum ? s : null, from, x, w);
        else fold(s, from, x, w, !sum);
      });
    }
    this.total += examples;
    this.count++;
  }

  /**
   * Allocates the sum and faults its pages in a slice at a time, letting the
   * event loop run (FitAggregation.prefault): otherwise the first update's
   * fold takes them all in one stretch, about 5 s for a 1 GiB model here.
   */
  async prefault(sliceValues = STEP_SLICE_VALUES): Promise<void> {
    if (this.finished) return;
    const sum = (this.sum ??= allocateSafetensors(this.layout));
    await runYielding(prefaultPages([...sum.tensors.values()].map((t) => t.data), sliceValues, () => this.sum === sum));
  }

  /** The average, fl32(sum / total), computed in the sum's buffer: the new weights as safetensors bytes and as views on them. */
  finish(): { buf: Buffer; tensors: NamedTensors } {
    if (this.adds.busy) throw new Error('an update is still being added');
    if (this.finished) throw new Error('this aggregation is finished');
    if (!this.sum || this.count === 0) throw new Error('no update to aggregate');
    this.finished = true;
    const total = this.total;
    for (const t of this.sum.tensors.values()) {
      const s = t.data;
      if (this.native) this.native.mean(s, s, total);
      else for (let i = 0; i < s.length; i++) s[i] = s[i] / total;
    }
    const out = this.sum;
    this.sum = null;
    return out;
  }

  dispose(): void {
    this.sum = null;
    this.finished = true;
  }
}

/**
 * Throws on the first value of the update, or of the sum it would give, that
 * is not finite; pauses after every `slice` values.
 */
function* checkFinite(name: string, x: Float32Array, s: Float32Array | undefined, w: number, native: NativeFold | null, slice: number): Generator<void, void> {
  // x - x is 0 for finite x and NaN otherwise: one branch-free pass, a look at the culprit only if it trips.
  let poison = 0;
  yield* inSlices(x.length, slice, (from, to) => {
    if (native) {
      if (native.check(s ?? null, from, x.subarray(from, to), w)) poison = NaN;
    } else if (s) for (let i = from; i < to; i++) {
      const v = Math.fround(s[i] + Math.fround(w * x[i]));
      poison += v - v;
    }
    else for (let i = from; i < to; i++) {
      const v = Math.fround(w * x[i]);
      poison += v - v;
    }
  });
  if (poison === 0) return;
  for (let i = 0; i < x.length; i++) {
    if (!Number.isFinite(x[i])) throw new UpdateRejectedError(`parameter '${name}' holds a non-finite value at index ${i}`, 'non-finite');
    const v = Math.fround((s ? s[i] : 0) + Math.fround(w * x[i]));
    if (!Number.isFinite(v)) throw new UpdateRejectedError(`parameter '${name}' at index ${i}: ${w} x ${x[i]} takes the float32 sum of the round beyond 3.4e38`, 'non-finite');
  }
}

/** s[from + i] = fl32(w x[i]) for the first update, else fl32(s[from + i] + fl32(w x[i])). */
function fold(s: Float32Array, from: number, x: Float32Array, w: number, first: boolean): void {
  if (first) for (let i = 0; i < x.length; i++) s[from + i] = w * x[i];
  else for (let i = 0; i < x.length; i++) s[from + i] = s[from + i] + Math.fround(w * x[i]);
}
