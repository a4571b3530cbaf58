/**
 * Hand-written protobuf encoding of the subset of onnx.proto this library
 * needs. Field numbers follow onnx/onnx.proto (proto2, so repeated scalars are
 * written unpacked, which every protobuf parser accepts).
 */
import { Writer } from 'protobufjs/minimal';
import { endianness } from 'os';

export type ElemType = 'float' | 'uint8' | 'int32' | 'int64' | 'bool' | 'double';

export const ELEM_TYPE_CODE: Record<ElemType, number> = {
  float: 1,
  uint8: 2,
  int32: 6,
  int64: 7,
  bool: 9,
  double: 11,
};

/** A dimension: a fixed size or a symbolic name such as 'N'. */
export type Dim = number | string;

export type OnnxTensor =
  | { dataType: 'float'; dims: number[]; data: Float32Array }
  | { dataType: 'int64'; dims: number[]; data: BigInt64Array };

export type AttrValue =
  | { type: 'float'; value: number }
  | { type: 'int'; value: number }
  | { type: 'string'; value: string }
  | { type: 'tensor'; value: OnnxTensor }
  | { type: 'floats'; value: number[] }
  | { type: 'ints'; value: number[] };

export interface NodeDef {
  opType: string;
  name: string;
  inputs: string[];
  outputs: string[];
  attributes: [string, AttrValue][];
  domain?: string;
}

export interface ValueInfoDef {
  name: string;
  elemType: ElemType;
  /** undefined = unknown rank; [] = scalar. */
  shape?: Dim[];
}

export interface ModelDef {
  irVersion: number;
  opsetVersion: number;
  producerName: string;
  producerVersion: string;
  graph: {
    name: string;
    nodes: NodeDef[];
    initializers: (OnnxTensor & { name: string })[];
    inputs: ValueInfoDef[];
    outputs: ValueInfoDef[];
  };
  metadata?: Record<string, string>;
}

const VARINT = 0;
const FIXED32 = 5;
const LEN = 2;
const ATTR_TYPE_CODE = { float: 1, int: 2, string: 3, tensor: 4, floats: 6, ints: 7 } as const;
const HOST_IS_LE = endianness() === 'LE';

const tag = (field: number, wire: number): number => (field << 3) | wire;

function message(w: Writer, field: number, body: (w: Writer) => void): void {
  w.uint32(tag(field, LEN)).fork();
  body(w);
  w.ldelim();
}

function str(w: Writer, field: number, s: string): void {
  w.uint32(tag(field, LEN)).string(s);
}

function int64(w: Writer, field: number, v: number): void {
  if (!Number.isSafeInteger(v)) throw new Error(`onnx: ${v} is not an integer`);
  w.uint32(tag(field, VARINT)).int64(v);
}

function littleEndianBytes(data: Float32Array | BigInt64Array): Uint8Array {
  if (HOST_IS_LE) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const out = Buffer.alloc(data.byteLength);
  if (data instanceof Float32Array) data.forEach((v, i) => out.writeFloatLE(v, 4 * i));
  else data.forEach((v, i) => out.writeBigInt64LE(v, 8 * i));
  return out;
}

function writeTensor(w: Writer, t: OnnxTensor, name?: string): void {
  const expected = t.dims.reduce((a, b) => a * b, 1);
  if (expected !== t.data.length) {
    throw new Error(`onnx: tensor ${name ?? ''} has ${t.data.length} elements but dims [${t.dims.join(', ')}] need ${expected}`);
  }
  for (const d of t.dims) int64(w, 1, d);
  w.uint32(tag(2, VARINT)).int32(ELEM_TYPE_CODE[t.dataType]);
  if (name !== undefined) str(w, 8, name);
  w.uint32(tag(9, LEN)).bytes(littleEndianBytes(t.data));
}

function writeAttribute(w: Writer, name: string, a: AttrValue): void {
  str(w, 1, name);
  switch (a.type) {
    case 'float':
      w.uint32(tag(2, FIXED32)).float(a.value);
      break;
    case 'int':
      int64(w, 3, a.value);
      break;
    case 'string':
      w.uint32(tag(4, LEN)).bytes(Buffer.from(a.value, 'utf8'));
      break;
    case 'tensor':
      message(w, 5, (m) => writeTensor(m, a.value));
      break;
    case 'floats':
      for (const f of a.value) w.uint32(tag(7, FIXED32)).float(f);
      break;
    case 'ints':
      for (const i of a.value) int64(w, 8, i);
      break;
  }
  w.uint32(tag(20, VARINT)).int32(ATTR_TYPE_CODE[a.type]);
}

function writeNode(w: Writer, n: NodeDef): void {
  for (const i of n.inputs) str(w, 1, i);
  for (const o of n.outputs) str(w, 2, o);
  str(w, 3, n.name);
  str(w, 4, n.opType);
  for (const [name, a] of n.attributes) message(w, 5, (m) => writeAttribute(m, name, a));
  if (n.domain) str(w, 7, n.domain);
}

function writeValueInfo(w: Writer, v: ValueInfoDef): void {
  str(w, 1, v.name);
  // TypeProto.tensor_type -> TypeProto.Tensor { elem_type, shape }
  message(w, 2, (type) =>
    message(type, 1, (tensor) => {
      tensor.uint32(tag(1, VARINT)).int32(ELEM_TYPE_CODE[v.elemType]);
      if (v.shape === undefined) return;
      const shape = v.shape;
      message(tensor, 2, (s) => {
        for (const d of shape) {
          message(s, 1, (dim) => (typeof d === 'number' ? int64(dim, 1, d) : str(dim, 2, d)));
        }
      });
    }),
  );
}

export function encodeModel(model: ModelDef): Buffer {
  const w = Writer.create();
  int64(w, 1, model.irVersion);
  str(w, 2, model.producerName);
  str(w, 3, model.producerVersion);
  message(w, 7, (g) => {
    for (const n of model.graph.nodes) message(g, 1, (m) => writeNode(m, n));
    str(g, 2, model.graph.name);
    for (const t of model.graph.initializers) message(g, 5, (m) => writeTensor(m, t, t.name));
    for (const v of model.graph.inputs) message(g, 11, (m) => writeValueInfo(m, v));
    for (const v of model.graph.outputs) message(g, 12, (m) => writeValueInfo(m, v));
  });
  // OperatorSetIdProto for the default domain ("" is the ai.onnx domain).
  message(w, 8, (o) => {
    str(o, 1, '');
    int64(o, 2, model.opsetVersion);
  });
  for (const [key, value] of Object.entries(model.metadata ?? {})) {
    message(w, 14, (m) => {
      str(m, 1, key);
      str(m, 2, value);
    });
  }
  const bytes = w.finish();
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
