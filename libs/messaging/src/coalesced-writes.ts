import type { Socket } from 'node:net';

interface Muxer {
  out?: Socket;
  _readIncoming?: () => void;
}

const COALESCED = Symbol('fl.coalescedWrites');

/**
 * Makes the frames an amqplib connection sends in one pass leave in one
 * system call.
 *
 * amqplib writes every frame to the socket on its own: a message larger than
 * 2 KiB is two writes (method and header, then the body), its ack a third. On
 * loopback and on virtual machines each write costs tens to hundreds of
 * microseconds of CPU (the receiver's side runs in the same call), which was
 * the largest single cost of a worker's zero-compute round. The connection's
 * muxer drains its channels' frames in one pass (`_readIncoming`); corking the
 * socket around that pass turns the pass into one `writev`. Back-pressure is
 * unchanged: a corked socket still reports a full buffer, and the muxer stops
 * there as before.
 *
 * `connection` is what amqplib's `connect` resolves to (amqp-connection-manager's
 * 'connect' event carries it). Anything unexpected (another amqplib layout)
 * leaves the connection as it is: this is an optimisation, never a requirement.
 * Returns whether the writes are now coalesced.
 */
export function coalesceWrites(connection: unknown): boolean {
  const mux = (connection as { connection?: { muxer?: Muxer & { [COALESCED]?: boolean } } } | null)?.connection?.muxer;
  if (!mux || typeof mux._readIncoming !== 'function' || typeof mux.out?.cork !== 'function') return false;
  if (mux[COALESCED]) return true;
  const drain = mux._readIncoming;
  mux._readIncoming = function (this: Muxer) {
    const out = mux.out!;
    out.cork();
    try {
      drain.call(mux);
    } finally {
      out.uncork();
    }
  };
  mux[COALESCED] = true;
  return true;
}
