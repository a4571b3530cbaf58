import { Strategy } from './strategy';
import { StateMap } from './weight-arithmetic';
import { WeightMap } from './weights';

/**
 * Server-side state a strategy carries from round to round (FedAvgM's
 * momentum, the FedOpt family's m and v) as named buffers (float32, laid out
 * like the model), so that a coordinator taking a task over continues where
 * the last one stopped.
 */
export interface ServerStateful {
  /** A copy of the state after the last finished round; empty when there is none (before the first round, or without momentum). */
  saveServerState(how?: StateTransfer): StateMap;
  /**
   * Replaces the state by a copy of one saved by the same strategy for a model
   * of the same layout. Throws ServerStateError naming what does not fit, and
   * then changes nothing. An empty map means "no state yet".
   */
  loadServerState(state: StateMap, template: WeightMap, how?: StateTransfer): void;
}

/**
 * How state changes hands. By default as copies, so that a strategy's later
 * steps never touch what the caller holds. `share` hands over the buffers
 * themselves: for large models, whose FedOpt state is twice the model,
 * where the caller knows the strategy's next step may change them.
 */
export interface StateTransfer {
  share?: boolean;
}

export class ServerStateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ServerStateError';
  }
}

export function hasServerState(s: Strategy): s is Strategy & ServerStateful {
  const c = s as Partial<ServerStateful>;
  return typeof c.saveServerState === 'function' && typeof c.loadServerState === 'function';
}

/** Puts the buffers of `state` into `out` under `<slot>/<parameter>`: copies, or the buffers themselves with `share`. */
export function packState(slot: string, state: StateMap | null, out: StateMap, how: StateTransfer = {}): StateMap {
  if (state) for (const [name, values] of state) out.set(`${slot}/${name}`, how.share ? values : values.slice());
  return out;
}

/**
 * The slots of a saved state, each laid out like `template` in float32, as
 * copies (the buffers themselves with `share`, where they are float32
 * already); null when `state` is empty. Float64 state, as checkpoints written
 * before the state became float32 hold it, is read into float32. Throws
 * ServerStateError on an unknown slot or parameter, a missing parameter or a
 * wrong length.
 */
export function unpackState(owner: string, state: StateMap, slots: readonly string[], template: WeightMap, how: StateTransfer = {}): Map<string, Map<string, Float32Array>> | null {
  if (state.size === 0) return null;
  const out = new Map<string, Map<string, Float32Array>>(slots.map((slot) => [slot, new Map()]));
  for (const [key, values] of state) {
    const cut = key.indexOf('/');
    const slot = cut > 0 ? out.get(key.slice(0, cut)) : undefined;
    const name = key.slice(cut + 1);
    if (!slot) throw new ServerStateError(`${owner}: saved state has an unknown entry '${key}' (expected ${slots.map((s) => `${s}/<parameter>`).join(', ')})`);
    const t = template.get(name);
    if (!t) throw new ServerStateError(`${owner}: saved state has entry '${key}' for a parameter the model does not have`);
    if (values.length !== t.data.length) throw new ServerStateError(`${owner}: saved state '${key}' has ${values.length} values, the model's parameter has ${t.data.length}`);
    slot.set(name, values instanceof Float32Array ? (how.share ? values : values.slice()) : Float32Array.from(values));
  }
  for (const [slot, map] of out) {
    for (const name of template.keys()) {
      if (!map.has(name)) throw new ServerStateError(`${owner}: saved state lacks '${slot}/${name}'`);
    }
  }
  return out;
}
