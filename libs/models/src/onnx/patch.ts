/**
 * Replaces the values of named float initializers in a serialised ONNX model,
 * leaving every other byte of the model as it was (field order, nodes,
 * attributes, metadata). Used to put normalisation statistics computed at the
 * start of a task into a package's graphs without rebuilding them.
 * Field numbers follow onnx/onnx.proto: ModelProto.graph = 7,
 * GraphProto.initializer = 5, TensorProto.dims = 1, data_type = 2, name = 8,
 * raw_data = 9.
 */
import { Reader } from 'protobufjs/minimal';

const LEN = 2;
const FLOAT = 1;

function fail(msg: string): never {
  throw new Error(`onnx patch: ${msg}`);
}

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return Buffer.from(out);
}

const lenField = (no: number, body: Buffer) => Buffer.concat([varint((no << 3) | LEN), varint(body.length), body]);

interface Field {
  no: number;
  wire: number;
  /** Bytes of the whole field, tag included. */
  start: number;
  end: number;
  /** Body of a length-delimited field. */
  bodyStart: number;
}

function readFields(bytes: Uint8Array, start: number, end: number): Field[] {
  const r = Reader.create(bytes);
  r.pos = start;
  const out: Field[] = [];
  while (r.pos < end) {
    const fieldStart = r.pos;
    const tag = r.uint32();
    const no = tag >>> 3;
    const wire = tag & 7;
    let bodyStart = r.pos;
    if (wire === LEN) {
      const len = r.uint32();
      bodyStart = r.pos;
      r.pos += len;
    } else r.skipType(wire);
    if (r.pos > end) fail('truncated message');
    out.push({ no, wire, start: fieldStart, end: r.pos, bodyStart });
  }
  return out;
}

function tensorHead(bytes: Uint8Array, f: Field): { name: string; dims: number[]; dataType: number } {
  const r = Reader.create(bytes);
  let name = '';
  const dims: number[] = [];
  let dataType = 0;
  for (const g of readFields(bytes, f.bodyStart, f.end)) {
    r.pos = g.bodyStart;
    if (g.no === 8 && g.wire === LEN) name = Buffer.from(bytes.subarray(g.bodyStart, g.end)).toString('utf8');
    else if (g.no === 2) {
      r.pos = g.start;
      r.uint32();
      dataType = r.int32();
    } else if (g.no === 1) {
      r.pos = g.start;
      r.uint32();
      if (g.wire === LEN) {
        const end = r.uint32() + r.pos;
        while (r.pos < end) dims.push(Number(r.int64().toString()));
      } else dims.push(Number(r.int64().toString()));
    }
  }
  return { name, dims, dataType };
}

function floatTensorBytes(name: string, dims: number[], data: Float32Array): Buffer {
  const parts: Buffer[] = [];
  for (const d of dims) parts.push(varint(1 << 3), varint(d));
  parts.push(varint(2 << 3), varint(FLOAT));
  parts.push(lenField(8, Buffer.from(name, 'utf8')));
  const raw = Buffer.alloc(data.length * 4);
  for (let i = 0; i < data.length; i++) raw.writeFloatLE(data[i], 4 * i);
  parts.push(lenField(9, raw));
  return Buffer.concat(parts);
}

/**
 * The model with each named float initializer holding the given values (same
 * shape). Fails naming the initializer when one is missing, not float, or of
 * another size.
 */
export function replaceFloatInitializers(model: Uint8Array, values: ReadonlyMap<string, Float32Array>): Buffer {
  const found = new Set<string>();
  const top = readFields(model, 0, model.length);
  const out: Buffer[] = [];
  for (const f of top) {
    if (f.no !== 7 || f.wire !== LEN) {
      out.push(Buffer.from(model.subarray(f.start, f.end)));
      continue;
    }
    const graph: Buffer[] = [];
    for (const g of readFields(model, f.bodyStart, f.end)) {
      if (g.no === 5 && g.wire === LEN) {
        const head = tensorHead(model, g);
        const v = values.get(head.name);
        if (v) {
          if (head.dataType !== FLOAT) fail(`initializer "${head.name}" is not float (data_type ${head.dataType})`);
          const count = head.dims.reduce((a, b) => a * b, 1);
          if (count !== v.length) fail(`initializer "${head.name}" holds ${count} values, ${v.length} given`);
          graph.push(lenField(5, floatTensorBytes(head.name, head.dims, v)));
          found.add(head.name);
          continue;
        }
      }
      graph.push(Buffer.from(model.subarray(g.start, g.end)));
    }
    out.push(lenField(7, Buffer.concat(graph)));
  }
  const missing = [...values.keys()].filter((n) => !found.has(n));
  if (missing.length) fail(`the graph has no initializer ${missing.map((n) => `"${n}"`).join(', ')}`);
  return Buffer.concat(out);
}
