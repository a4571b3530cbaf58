import { createHash, Hash, randomUUID } from 'node:crypto';
import { FileHandle, open, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** One chunk of a large attachment, as the `x-fl-chunk` header carries it. */
export interface ChunkInfo {
  /** Same for every chunk of one message. */
  transfer: string;
  index: number;
  count: number;
  /** Size of the whole attachment. */
  bytes: number;
  /** Offset of this chunk in it. */
  offset: number;
  /** SHA-256 (hex) of the whole attachment: the receiver checks the reassembled bytes against it. */
  sha256: string;
}

export const CHUNK_HEADER = 'x-fl-chunk';
const SHA256_HEX = /^[0-9a-f]{64}$/;
/** Chunks of 16 MiB: far below RabbitMQ's 128 MiB message limit, large enough that per-message costs vanish. */
export const DEFAULT_CHUNK_BYTES = 16 * 1024 * 1024;

/**
 * Cuts an attachment into chunks without copying it (each chunk is a view of the original buffer)
 * and describes each. The hash covers the whole attachment: `sha256` where the caller has it, else
 * computed a slice at a time, letting the event loop run between slices.
 */
export async function planChunks(attachment: Buffer, chunkBytes: number, sha256?: string): Promise<{ info: ChunkInfo; data: Buffer }[]> {
  if (!Number.isInteger(chunkBytes) || chunkBytes < 1) throw new RangeError(`chunk size must be a positive integer, got ${chunkBytes}`);
  if (sha256 !== undefined && !SHA256_HEX.test(sha256)) throw new TypeError(`the attachment's SHA-256 must be 64 lowercase hex digits, got ${JSON.stringify(sha256)}`);
  sha256 ??= await sha256HexYielding(attachment);
  const transfer = randomUUID();
  const count = Math.max(1, Math.ceil(attachment.length / chunkBytes));
  const chunks: { info: ChunkInfo; data: Buffer }[] = [];
  for (let index = 0; index < count; index++) {
    const offset = index * chunkBytes;
    chunks.push({ info: { transfer, index, count, bytes: attachment.length, offset, sha256 }, data: attachment.subarray(offset, offset + chunkBytes) });
  }
  return chunks;
}

export function parseChunkInfo(raw: unknown): ChunkInfo {
  let v: Record<string, unknown>;
  try {
    v = JSON.parse(Buffer.isBuffer(raw) ? raw.toString('utf8') : String(raw));
  } catch {
    throw new Error(`${CHUNK_HEADER} header is not JSON`);
  }
  const int = (k: string, min: number) => {
    const n = v?.[k];
    if (!Number.isSafeInteger(n) || (n as number) < min) throw new Error(`${CHUNK_HEADER}.${k} must be an integer >= ${min}, got ${JSON.stringify(n)}`);
    return n as number;
  };
  const info: ChunkInfo = {
    transfer: typeof v?.transfer === 'string' && /^[0-9a-f-]{36}$/.test(v.transfer) ? v.transfer : '',
    index: int('index', 0),
    count: int('count', 1),
    bytes: int('bytes', 0),
    offset: int('offset', 0),
    sha256: typeof v?.sha256 === 'string' && SHA256_HEX.test(v.sha256) ? v.sha256 : '',
  };
  if (!info.transfer) throw new Error(`${CHUNK_HEADER}.transfer must be a UUID`);
  if (!info.sha256) throw new Error(`${CHUNK_HEADER}.sha256 must be 64 hex digits`);
  if (info.index >= info.count) throw new Error(`${CHUNK_HEADER}: chunk ${info.index} of ${info.count}`);
  return info;
}

export class ChunkRejectedError extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'ChunkRejectedError';
  }
}

interface Assembly {
  info: ChunkInfo;
  data: Buffer;
  received: Set<number>;
  receivedBytes: number;
  startedAt: number;
  /**
   * The SHA-256 of the bytes from the start, taken chunk by chunk in index order as they arrive
   * (senders send in order), so that a large attachment is not hashed in one stretch at the end:
   * 0.8 s per GiB here, with the event loop held. `hashed` bytes are in; `ranges` holds the
   * chunks received ahead of the next one. Null once a chunk does not start where the one before
   * ended: the whole is then hashed at the end.
   */
  hash: Hash | null;
  hashed: number;
  hashedChunks: number;
  ranges: Map<number, { offset: number; length: number }>;
}

export interface AssemblerOptions {
  /** Bytes of all unfinished attachments together; a chunk that would pass it is refused. */
  maxBytes: number;
  /** An attachment not complete this long after its first chunk is given up (its memory freed). */
  timeoutMs: number;
  /**
   * `accept` only: bytes of attachments held in memory at once, being put together or being
   * handled (until `release`). A transfer that would pass it is put together in a file instead
   * and read in once the memory is free; one attachment is always let in, however large. So
   * several large attachments arriving at once are held one at a time. Default: no bound.
   */
  memoryBytes?: number;
  /** Folder of those files (default: the system's temporary folder). */
  spillDir?: string;
}

/** A transfer put together in a file (AssemblerOptions.memoryBytes). */
interface SpilledAssembly {
  info: ChunkInfo;
  path: string;
  file: Promise<FileHandle>;
  /** Chunks being written or written (a redelivered one is skipped). */
  claimed: Set<number>;
  written: number;
  writtenBytes: number;
  startedAt: number;
}

/**
 * Puts chunked attachments back together: one buffer of the final size per transfer, each chunk
 * copied into place (so the whole attachment is held once). A chunk seen twice (a redelivery after
 * a reconnect) changes nothing, also after its transfer was handed over (for as long as an
 * unfinished one is kept); chunks may arrive in any order. The result is checked against the
 * sender's SHA-256 before anyone sees it.
 */
export class ChunkAssembler {
  private readonly open = new Map<string, Assembly>();
  private bytesHeld = 0;
  private readonly spilled = new Map<string, SpilledAssembly>();
  private spilledBytes = 0;
  /** Whole attachments `accept` handed out and not yet released, and their bytes. */
  private readonly handedOut = new WeakSet<Buffer>();
  private handedOutBytes = 0;
  /**
   * Transfers handed over whole, and when: a chunk of one delivered again (its acknowledgement
   * lost with a connection, while the handler ran) is ignored, not taken for the first chunk of a
   * transfer that never completes, which would hold its bytes until the timeout. Kept as long.
   */
  private readonly completed = new Map<string, number>();
  private waiters: (() => void)[] = [];

  constructor(private readonly options: AssemblerOptions) {}

  /** Unfinished transfers and the bytes they hold (in memory and in files). */
  get pending(): { transfers: number; bytes: number } {
    return { transfers: this.open.size + this.spilled.size, bytes: this.bytesHeld + this.spilledBytes };
  }

  /** Bytes `accept` holds in memory: transfers being put together and attachments not yet released. */
  get memoryInUse(): number {
    return this.bytesHeld + this.handedOutBytes;
  }

  /**
   * Like `add`, bounded by `memoryBytes`: a new transfer that would take the memory in use beyond
   * it is put together in a file and read in when complete, once the memory is free. Whatever this
   * returns is counted until `release`: call it when done with the attachment.
   */
  async accept(info: ChunkInfo, chunk: Buffer, now = Date.now()): Promise<Buffer | null> {
    if (this.completed.has(info.transfer)) return null;
    const spilled = this.spilled.get(info.transfer);
    if (spilled) return this.addToFile(spilled, info, chunk);
    const limit = this.options.memoryBytes;
    if (!this.open.has(info.transfer) && limit !== undefined && this.memoryInUse > 0 && this.memoryInUse + info.bytes > limit) {
      if (this.bytesHeld + this.spilledBytes + info.bytes > this.options.maxBytes) {
        throw new ChunkRejectedError(
          `transfer ${info.transfer} of ${info.bytes} bytes refused: ${this.bytesHeld + this.spilledBytes} bytes are being reassembled already, the bound is ${this.options.maxBytes}`,
        );
      }
      const path = join(this.options.spillDir ?? tmpdir(), `fl-chunks-${info.transfer}`);
      const a: SpilledAssembly = { info, path, file: open(path, 'w+', 0o600), claimed: new Set(), written: 0, writtenBytes: 0, startedAt: now };
      a.file.catch(() => undefined); // awaited below; an error there is reported on the chunk
      this.spilled.set(info.transfer, a);
      this.spilledBytes += info.bytes;
      return this.addToFile(a, info, chunk);
    }
    const whole = this.add(info, chunk, now);
    if (whole) this.handOut(whole);
    return whole;
  }

  /** An attachment `accept` returned is no longer held: its memory counts no more. */
  release(whole: Buffer): void {
    if (!this.handedOut.delete(whole)) return;
    this.handedOutBytes -= whole.length;
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }

  private handOut(whole: Buffer): void {
    this.handedOut.add(whole);
    this.handedOutBytes += whole.length;
  }

  private async addToFile(a: SpilledAssembly, info: ChunkInfo, chunk: Buffer): Promise<Buffer | null> {
    if (info.count !== a.info.count || info.bytes !== a.info.bytes || info.sha256 !== a.info.sha256 || info.offset + chunk.length > info.bytes) {
      await this.forgetFile(a);
      throw new ChunkRejectedError(`chunk ${info.index} of transfer ${info.transfer} does not fit it (count, size, hash or offset differ)`);
    }
    if (a.claimed.has(info.index)) return null;
    a.claimed.add(info.index);
    try {
      const file = await a.file;
      await file.write(chunk, 0, chunk.length, info.offset);
    } catch (err) {
      await this.forgetFile(a);
      throw new ChunkRejectedError(`transfer ${info.transfer}: chunk ${info.index} could not be written to ${a.path}: ${(err as Error).message}`);
    }
    if (!this.spilled.has(info.transfer)) return null; // expired meanwhile
    a.written++;
    a.writtenBytes += chunk.length;
    if (a.written < a.info.count) return null;
    try {
      if (a.writtenBytes !== a.info.bytes) throw new ChunkRejectedError(`transfer ${info.transfer}: ${a.writtenBytes} bytes received, ${a.info.bytes} announced`);
      // Read in only once the memory is free (or nothing else is held): one large attachment at a time.
      const limit = this.options.memoryBytes ?? Infinity;
      while (this.memoryInUse > 0 && this.memoryInUse + a.info.bytes > limit) await new Promise<void>((wake) => this.waiters.push(wake));
      const data = Buffer.allocUnsafe(a.info.bytes);
      this.handOut(data);
      try {
        const { bytesRead } = await (await a.file).read(data, 0, data.length, 0);
        const sha = await sha256HexYielding(data);
        if (bytesRead !== data.length || sha !== a.info.sha256) {
          throw new ChunkRejectedError(`transfer ${info.transfer}: reassembled bytes have SHA-256 ${sha}, the sender announced ${a.info.sha256}`);
        }
      } catch (err) {
        this.release(data);
        throw err;
      }
      this.completed.set(info.transfer, Date.now());
      return data;
    } finally {
      await this.forgetFile(a);
    }
  }

  private async forgetFile(a: SpilledAssembly): Promise<void> {
    if (!this.spilled.delete(a.info.transfer)) return;
    this.spilledBytes -= a.info.bytes;
    await a.file.then((f) => f.close()).catch(() => undefined);
    await unlink(a.path).catch(() => undefined);
  }

  /**
   * Adds a chunk. Returns the whole attachment once its last chunk arrived and its hash matches,
   * null while chunks are missing. Throws ChunkRejectedError (and forgets the transfer) when the
   * chunk does not fit its transfer, the memory bound would be passed, or the hash does not match.
   */
  add(info: ChunkInfo, chunk: Buffer, now = Date.now()): Buffer | null {
    if (this.completed.has(info.transfer)) return null;
    let a = this.open.get(info.transfer);
    if (!a) {
      if (this.bytesHeld + info.bytes > this.options.maxBytes) {
        throw new ChunkRejectedError(
          `transfer ${info.transfer} of ${info.bytes} bytes refused: ${this.bytesHeld} bytes are being reassembled already, the bound is ${this.options.maxBytes}`,
        );
      }
      a = { info, data: Buffer.allocUnsafe(info.bytes), received: new Set(), receivedBytes: 0, startedAt: now, hash: createHash('sha256'), hashed: 0, hashedChunks: 0, ranges: new Map() };
      this.open.set(info.transfer, a);
      this.bytesHeld += info.bytes;
    }
    // Overlapping or missing ranges would show in the byte count and the hash at the end.
    if (info.count !== a.info.count || info.bytes !== a.info.bytes || info.sha256 !== a.info.sha256 || info.offset + chunk.length > info.bytes) {
      this.forget(a);
      throw new ChunkRejectedError(`chunk ${info.index} of transfer ${info.transfer} does not fit it (count, size, hash or offset differ)`);
    }
    if (a.received.has(info.index)) return null;
    chunk.copy(a.data, info.offset);
    a.received.add(info.index);
    a.receivedBytes += chunk.length;
    hashAhead(a, info.index, info.offset, chunk.length);
    if (a.received.size < a.info.count) return null;
    this.forget(a);
    if (a.receivedBytes !== a.info.bytes) throw new ChunkRejectedError(`transfer ${info.transfer}: ${a.receivedBytes} bytes received, ${a.info.bytes} announced`);
    // A running hash still kept has taken every chunk (all are in, each started where the one before ended).
    const sha = (a.hash ?? createHash('sha256').update(a.data)).digest('hex');
    if (sha !== a.info.sha256) throw new ChunkRejectedError(`transfer ${info.transfer}: reassembled bytes have SHA-256 ${sha}, the sender announced ${a.info.sha256}`);
    this.completed.set(info.transfer, now);
    return a.data;
  }

  /** Gives up transfers older than the timeout, and forgets completed ones as old; returns what was dropped, for the log. */
  expire(now = Date.now()): ChunkInfo[] {
    const dropped: ChunkInfo[] = [];
    for (const [transfer, at] of this.completed) if (now - at >= this.options.timeoutMs) this.completed.delete(transfer);
    for (const a of [...this.open.values()]) {
      if (now - a.startedAt >= this.options.timeoutMs) {
        this.forget(a);
        dropped.push(a.info);
      }
    }
    for (const a of [...this.spilled.values()]) {
      // Complete ones (waiting for memory or being read) are not given up.
      if (now - a.startedAt >= this.options.timeoutMs && a.written < a.info.count) {
        void this.forgetFile(a);
        dropped.push(a.info);
      }
    }
    return dropped;
  }

  private forget(a: Assembly): void {
    if (this.open.delete(a.info.transfer)) this.bytesHeld -= a.info.bytes;
  }
}

/**
 * Takes the chunks that now follow on from what is hashed into the assembly's running hash: those
 * of the next indexes, each starting where the one before ended. As they cover the buffer without
 * gaps or overlaps, no later chunk can change a hashed byte; any other layout stops the running
 * hash, and the whole is hashed once complete.
 */
function hashAhead(a: Assembly, index: number, offset: number, length: number): void {
  if (!a.hash) return;
  a.ranges.set(index, { offset, length });
  for (let r = a.ranges.get(a.hashedChunks); r; r = a.ranges.get(a.hashedChunks)) {
    a.ranges.delete(a.hashedChunks);
    if (r.offset !== a.hashed) {
      a.hash = null;
      a.ranges.clear();
      return;
    }
    a.hash.update(a.data.subarray(r.offset, r.offset + r.length));
    a.hashed += r.length;
    a.hashedChunks++;
  }
}

/** Bytes hashed at once by sha256HexYielding before the event loop runs: about 13 ms here. */
const HASH_SLICE_BYTES = 16 * 1024 * 1024;

/**
 * The SHA-256 of `data` (hex), a slice at a time, letting the event loop run
 * between slices: for the large buffers whose hash would otherwise hold a
 * process for a second per GiB (the connection's heartbeats wait meanwhile).
 */
export async function sha256HexYielding(data: Buffer): Promise<string> {
  const hash = createHash('sha256');
  for (let at = 0; at < data.length; at += HASH_SLICE_BYTES) {
    if (at > 0) await new Promise((resolve) => setImmediate(resolve));
    hash.update(data.subarray(at, Math.min(at + HASH_SLICE_BYTES, data.length)));
  }
  return hash.digest('hex');
}
