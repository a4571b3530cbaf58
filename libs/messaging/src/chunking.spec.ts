import { createHash, Hash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChunkAssembler, ChunkRejectedError, parseChunkInfo, planChunks } from './chunking';

describe('chunked attachments', () => {
  const bytes = randomBytes(10_000 + 7);
  const sha = createHash('sha256').update(bytes).digest('hex');

  it('cuts an attachment into views of the original buffer, each described, the last one shorter', async () => {
    const chunks = await planChunks(bytes, 1000);
    expect(chunks).toHaveLength(11);
    expect(chunks.map((c) => c.data.length)).toEqual([...Array(10).fill(1000), 7]);
    expect(chunks[3].data.buffer).toBe(bytes.buffer);
    expect(new Set(chunks.map((c) => c.info.transfer)).size).toBe(1);
    expect(chunks[10].info).toMatchObject({ index: 10, count: 11, bytes: bytes.length, offset: 10_000, sha256: sha });
    expect(Buffer.concat(chunks.map((c) => c.data))).toEqual(bytes);
  });

  it("takes the sender's own hash where it is given, without hashing the attachment again", async () => {
    const update = jest.spyOn(Hash.prototype, 'update');
    try {
      const chunks = await planChunks(bytes, 1000, sha);
      expect(update).not.toHaveBeenCalled();
      expect(chunks.every((c) => c.info.sha256 === sha)).toBe(true);
    } finally {
      update.mockRestore();
    }
    // A wrong hash is sent as given: the receiver refuses the transfer.
    const wrong = createHash('sha256').update('other bytes').digest('hex');
    const a = new ChunkAssembler({ maxBytes: 1e6, timeoutMs: 60_000 });
    const sent = await planChunks(bytes, 1000, wrong);
    expect(() => sent.forEach((c) => a.add(c.info, c.data))).toThrow(ChunkRejectedError);
  });

  it('refuses a given hash that is not 64 lowercase hex digits, naming it', async () => {
    await expect(planChunks(bytes, 1000, sha.toUpperCase())).rejects.toThrow(`the attachment's SHA-256 must be 64 lowercase hex digits, got "${sha.toUpperCase()}"`);
    await expect(planChunks(bytes, 1000, sha.slice(1))).rejects.toThrow(TypeError);
  });

  it('hashes a large attachment 16 MiB at a time, letting the event loop run between the slices', async () => {
    const large = Buffer.alloc(40 * 2 ** 20, 7);
    const ran: number[] = [];
    const original = Hash.prototype.update;
    const update = jest.spyOn(Hash.prototype, 'update').mockImplementation(function (this: Hash, ...args: Parameters<Hash['update']>) {
      ran.push((args[0] as unknown as Uint8Array).length);
      // A callback queued for the event loop's next turn: it runs before the next slice only if the loop ran between them.
      setImmediate(() => ran.push(-1));
      return original.apply(this, args);
    });
    let chunks;
    try {
      chunks = await planChunks(large, 16 * 2 ** 20);
    } finally {
      update.mockRestore();
    }
    expect(ran.filter((n) => n > 0)).toEqual([16 * 2 ** 20, 16 * 2 ** 20, 8 * 2 ** 20]);
    expect(ran.slice(0, 4)).toEqual([16 * 2 ** 20, -1, 16 * 2 ** 20, -1]);
    expect(chunks[0].info.sha256).toBe(createHash('sha256').update(large).digest('hex'));
  });

  it('reassembles chunks in any order, once, and ignores a chunk delivered twice', async () => {
    const a = new ChunkAssembler({ maxBytes: 1e6, timeoutMs: 60_000 });
    const chunks = (await planChunks(bytes, 1000)).reverse();
    let whole: Buffer | null = null;
    for (const [i, c] of chunks.entries()) {
      expect(whole).toBeNull();
      whole = a.add(c.info, c.data);
      if (i === 4) expect(a.add(c.info, c.data)).toBeNull(); // redelivery after a reconnect
    }
    expect(whole).toEqual(bytes);
    expect(a.pending).toEqual({ transfers: 0, bytes: 0 });
  });

  it("ignores a chunk of a transfer already handed over (its acknowledgement lost with a connection) until the timeout", async () => {
    const a = new ChunkAssembler({ maxBytes: 1e6, timeoutMs: 60_000 });
    const chunks = await planChunks(bytes, 1000);
    let whole: Buffer | null = null;
    for (const c of chunks) whole = a.add(c.info, c.data, 1000);
    expect(whole).toEqual(bytes);
    const last = chunks[chunks.length - 1];
    // Redelivered: nothing held for it, as a first chunk of a new transfer would be.
    expect(a.add(last.info, last.data, 2000)).toBeNull();
    expect(a.pending).toEqual({ transfers: 0, bytes: 0 });
    expect(a.expire(1000 + 59_999)).toEqual([]);
    expect(a.add(chunks[0].info, chunks[0].data, 1000 + 59_999)).toBeNull();
    expect(a.pending).toEqual({ transfers: 0, bytes: 0 });
    // Past the timeout it is forgotten: the same chunk starts a transfer again.
    a.expire(1000 + 60_000);
    expect(a.add(last.info, last.data, 1000 + 60_000)).toBeNull();
    expect(a.pending).toEqual({ transfers: 1, bytes: bytes.length });
  });

  it('refuses reassembled bytes whose hash is not the announced one, and forgets the transfer', async () => {
    const a = new ChunkAssembler({ maxBytes: 1e6, timeoutMs: 60_000 });
    const chunks = await planChunks(bytes, 4000);
    const tampered = Buffer.from(chunks[1].data);
    tampered[5] ^= 1;
    a.add(chunks[0].info, chunks[0].data);
    a.add(chunks[1].info, tampered);
    expect(() => a.add(chunks[2].info, chunks[2].data)).toThrow(new ChunkRejectedError(`transfer ${chunks[0].info.transfer}: reassembled bytes have SHA-256 ${createHash('sha256').update(Buffer.concat([chunks[0].data, tampered, chunks[2].data])).digest('hex')}, the sender announced ${sha}`));
    expect(a.pending.transfers).toBe(0);
  });

  it('hashes the chunks as they arrive in order, never the whole attachment in one stretch at the end', async () => {
    const chunks = await planChunks(bytes, 1000); // the sender hashes the whole: not counted below
    const update = jest.spyOn(Hash.prototype, 'update');
    try {
      const a = new ChunkAssembler({ maxBytes: 1e6, timeoutMs: 60_000 });
      let whole: Buffer | null = null;
      for (const [i, c] of chunks.entries()) {
        whole = a.add(c.info, c.data);
        // Each chunk is taken into the hash when it arrives.
        expect(update.mock.calls.map(([d]) => (d as unknown as Uint8Array).length)).toEqual(chunks.slice(0, i + 1).map((k) => k.data.length));
      }
      expect(whole).toEqual(bytes);
    } finally {
      update.mockRestore();
    }
  });

  it('takes chunks received ahead of their turn into the hash once the gap before them is filled', async () => {
    const a = new ChunkAssembler({ maxBytes: 1e6, timeoutMs: 60_000 });
    const chunks = await planChunks(bytes, 1000);
    const order = [2, 0, 1, 5, 4, 3, 10, 6, 7, 9, 8];
    let whole: Buffer | null = null;
    for (const i of order) {
      expect(whole).toBeNull();
      whole = a.add(chunks[i].info, chunks[i].data);
      if (i === 1) expect(a.add(chunks[2].info, chunks[2].data)).toBeNull(); // a redelivery of one already hashed
    }
    expect(whole).toEqual(bytes);
  });

  it('refuses chunks that overlap, leaving a gap, whatever their order (the whole is hashed again at the end)', async () => {
    for (const reversed of [false, true]) {
      const a = new ChunkAssembler({ maxBytes: 1e6, timeoutMs: 60_000 });
      // Bytes of its own: the reassembly buffer is not zeroed, and memory freed by another test's buffer of the same
      // bytes may hold just the missing ones (the hash then rightly passes).
      const chunks = await planChunks(randomBytes(bytes.length), 4000);
      // Chunk 1 claims chunk 0's place: as many bytes in all, but bytes 4000 to 7999 never arrive.
      const moved = [chunks[0], { info: { ...chunks[1].info, offset: 0 }, data: chunks[0].data }, chunks[2]];
      if (reversed) moved.reverse();
      a.add(moved[0].info, moved[0].data);
      a.add(moved[1].info, moved[1].data);
      expect(() => a.add(moved[2].info, moved[2].data)).toThrow(/reassembled bytes have SHA-256 [0-9a-f]{64}, the sender announced/);
      expect(a.pending.transfers).toBe(0);
    }
  });

  it('refuses a chunk that does not fit its transfer', async () => {
    const a = new ChunkAssembler({ maxBytes: 1e6, timeoutMs: 60_000 });
    const [first, second] = await planChunks(bytes, 4000);
    a.add(first.info, first.data);
    expect(() => a.add({ ...second.info, bytes: 5 }, second.data)).toThrow(/does not fit it/);
    expect(a.pending).toEqual({ transfers: 0, bytes: 0 });
    expect(() => a.add({ ...first.info, offset: bytes.length - 10 }, first.data)).toThrow(/does not fit it/);
  });

  it('holds at most maxBytes in unfinished transfers', async () => {
    const a = new ChunkAssembler({ maxBytes: 15_000, timeoutMs: 60_000 });
    const one = await planChunks(bytes, 4000);
    const two = await planChunks(bytes, 4000);
    a.add(one[0].info, one[0].data);
    expect(() => a.add(two[0].info, two[0].data)).toThrow(/refused: 10007 bytes are being reassembled already, the bound is 15000/);
    expect(a.pending).toEqual({ transfers: 1, bytes: bytes.length });
  });

  it('gives up transfers that stay incomplete past the timeout', async () => {
    const a = new ChunkAssembler({ maxBytes: 1e6, timeoutMs: 1000 });
    const [first] = await planChunks(bytes, 4000);
    a.add(first.info, first.data, 5000);
    expect(a.expire(5999)).toEqual([]);
    expect(a.expire(6000)).toEqual([first.info]);
    expect(a.pending).toEqual({ transfers: 0, bytes: 0 });
  });

  describe('with a memory bound (accept)', () => {
    const other = randomBytes(9000);
    const third = randomBytes(5000);
    let dir: string;
    beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'fl-chunks-spec-'))));
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    it('holds one large attachment in memory at a time: the others wait in files until it is released', async () => {
      const a = new ChunkAssembler({ maxBytes: 1e6, timeoutMs: 60_000, memoryBytes: 1000, spillDir: dir });
      const [x, y, z] = await Promise.all([bytes, other, third].map((b) => planChunks(b, 1000)));
      // Interleaved, as three workers' updates arrive: x goes to memory, y and z to files; all but y's and z's last chunks.
      const seen: (Buffer | null)[] = [];
      for (let i = 0; i < x.length; i++) {
        for (const chunks of [x, y, z]) if (i < chunks.length - (chunks === x ? 0 : 1)) seen.push(await a.accept(chunks[i].info, chunks[i].data));
      }
      const [wholeX, ...none] = seen.filter(Boolean) as Buffer[];
      expect(none).toEqual([]);
      expect(wholeX).toEqual(bytes);
      expect(readdirSync(dir)).toHaveLength(2);
      expect(a.memoryInUse).toBe(bytes.length);
      // Complete, y and z wait for x's memory; then come in one at a time.
      const done: Buffer[] = [];
      const rest = [y, z].map((chunks) => a.accept(chunks[chunks.length - 1].info, chunks[chunks.length - 1].data).then((w) => void done.push(w!)));
      await new Promise((r) => setTimeout(r, 50));
      expect(done).toEqual([]);
      a.release(wholeX);
      await Promise.race(rest);
      await new Promise((r) => setTimeout(r, 50));
      expect(done).toHaveLength(1);
      expect(a.memoryInUse).toBe(done[0].length);
      a.release(done[0]);
      await Promise.all(rest);
      expect(done.slice().sort((p, q) => p.length - q.length)).toEqual([third, other]);
      a.release(done[1]);
      expect(a.memoryInUse).toBe(0);
      expect(a.pending).toEqual({ transfers: 0, bytes: 0 });
      expect(readdirSync(dir)).toEqual([]);
    });

    it('ignores a chunk of a spilled transfer already handed over', async () => {
      const a = new ChunkAssembler({ maxBytes: 1e6, timeoutMs: 60_000, memoryBytes: 1000, spillDir: dir });
      const [x, y] = await Promise.all([bytes, other].map((b) => planChunks(b, 4000)));
      expect(await a.accept(x[0].info, x[0].data)).toBeNull(); // in memory
      for (const c of y.slice(0, -1)) expect(await a.accept(c.info, c.data)).toBeNull(); // to a file
      let wholeX: Buffer | null = null;
      for (const c of x.slice(1)) wholeX = await a.accept(c.info, c.data);
      a.release(wholeX!);
      const wholeY = await a.accept(y[y.length - 1].info, y[y.length - 1].data);
      expect(wholeY).toEqual(other);
      a.release(wholeY!);
      expect(await a.accept(y[y.length - 1].info, y[y.length - 1].data)).toBeNull();
      expect(await a.accept(y[0].info, y[0].data)).toBeNull();
      expect(a.pending).toEqual({ transfers: 0, bytes: 0 });
      expect(a.memoryInUse).toBe(0);
      expect(readdirSync(dir)).toEqual([]);
    });

    it('checks a spilled attachment against its SHA-256 and ignores a redelivered chunk', async () => {
      const a = new ChunkAssembler({ maxBytes: 1e6, timeoutMs: 60_000, memoryBytes: 1000, spillDir: dir });
      const [first, ...rest] = await planChunks(bytes, 4000);
      expect(await a.accept(first.info, first.data)).toBeNull(); // in memory
      const spilled = await planChunks(other, 4000);
      expect(await a.accept(spilled[0].info, spilled[0].data)).toBeNull();
      expect(await a.accept(spilled[0].info, spilled[0].data)).toBeNull(); // redelivered
      expect(await a.accept(spilled[1].info, Buffer.alloc(spilled[1].data.length))).toBeNull(); // corrupted
      let whole: Buffer | null = null;
      for (const c of rest) whole = await a.accept(c.info, c.data);
      a.release(whole!);
      await expect(a.accept(spilled[2].info, spilled[2].data)).rejects.toThrow(ChunkRejectedError);
      expect(a.memoryInUse).toBe(0);
      expect(readdirSync(dir)).toEqual([]);
    });
  });

  describe('a spilled attachment of several hash slices (16 MiB each)', () => {
    const large = randomBytes(40 * 2 ** 20 + 3);
    let dir: string;
    beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'fl-chunks-large-'))));
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    it.each([
      ['intact', -1],
      ['with one byte changed in its last slice', 40 * 2 ** 20 + 1],
    ])('is checked against its SHA-256 when read in: %s', async (_name, flip) => {
      const a = new ChunkAssembler({ maxBytes: 2 ** 30, timeoutMs: 60_000, memoryBytes: 1000, spillDir: dir });
      const [first, ...rest] = await planChunks(bytes, 4000);
      expect(await a.accept(first.info, first.data)).toBeNull(); // in memory: the large one goes to a file
      const chunks = await planChunks(large, 16 * 2 ** 20);
      expect(chunks).toHaveLength(3);
      const sent = chunks.map((c) => {
        if (flip < c.info.offset || flip >= c.info.offset + c.data.length) return c.data;
        const changed = Buffer.from(c.data);
        changed[flip - c.info.offset] ^= 1;
        return changed;
      });
      for (let i = 0; i < 2; i++) expect(await a.accept(chunks[i].info, sent[i])).toBeNull();
      let small: Buffer | null = null;
      for (const c of rest) small = await a.accept(c.info, c.data);
      expect(small).toEqual(bytes);
      a.release(small!);
      // Its last chunk completes the file; it is read in and hashed slice by slice.
      const last = a.accept(chunks[2].info, sent[2]);
      if (flip < 0) expect((await last)!.equals(large)).toBe(true); // equals: toEqual compares 40 M bytes one by one, for minutes
      else await expect(last).rejects.toThrow(/reassembled bytes have SHA-256 [0-9a-f]{64}, the sender announced/);
      expect(readdirSync(dir)).toEqual([]);
    });
  });

  it('reads the chunk header strictly, naming the bad field', async () => {
    const [c] = await planChunks(bytes, 4000);
    expect(parseChunkInfo(JSON.stringify(c.info))).toEqual(c.info);
    expect(parseChunkInfo(Buffer.from(JSON.stringify(c.info)))).toEqual(c.info);
    expect(() => parseChunkInfo('{')).toThrow('x-fl-chunk header is not JSON');
    expect(() => parseChunkInfo(JSON.stringify({ ...c.info, index: -1 }))).toThrow('x-fl-chunk.index must be an integer >= 0, got -1');
    expect(() => parseChunkInfo(JSON.stringify({ ...c.info, index: 3 }))).toThrow('x-fl-chunk: chunk 3 of 3');
    expect(() => parseChunkInfo(JSON.stringify({ ...c.info, sha256: 'x' }))).toThrow('x-fl-chunk.sha256 must be 64 hex digits');
    expect(() => parseChunkInfo(JSON.stringify({ ...c.info, transfer: '../x' }))).toThrow('x-fl-chunk.transfer must be a UUID');
  });
});
