import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

let collector: (() => void) | null | undefined;

/**
 * A full garbage collection, now. For the rare place where memory must go
 * back at a known point: a large model's update, hundreds of MiB, is
 * released once folded, but its memory lies outside V8's heap and goes back
 * only when the small object holding it is collected, which a process that
 * allocates little else may not do before the next update arrives (then two
 * are held where one was meant). Takes a few milliseconds on the apps' small
 * heaps. The collector is V8's own `gc`, made available once on first use
 * (the process need not start with --expose-gc). Returns whether it ran.
 */
export function collectGarbage(): boolean {
  if (collector === undefined) {
    try {
      setFlagsFromString('--expose-gc');
      collector = runInNewContext('gc') as () => void;
    } catch {
      collector = null;
    }
  }
  collector?.();
  return collector !== null;
}
