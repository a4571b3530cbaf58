/**
 * Hand-written protobuf decoding of the subset of onnx.proto that imported
 * models use (the counterpart of proto.ts). Field numbers follow
 * onnx/onnx.proto; repeated scalars are accepted packed or unpacked.
 * Anything the train-step import cannot represent (external data, sparse
 * initializers, tensor types other than float and int64, sub-graphs) fails
 * here with the name of the offending value.
 */
import { Reader } from 'protobufjs/minimal';
import { AttrValue, Dim, ElemType, ELEM_TYPE_CODE, NodeDef, OnnxTensor, ValueInfoDef } from './proto';

export interface DecodedModel {
  irVersion: number;
  producerName: string;
  producerVersion: string;
  /** Version per operator-set domain ('' is the default ai.onnx domain). */
  opsets: Map<string, number>;
  graph: {
    name: string;
    nodes: NodeDef[];
    initializers: (OnnxTensor & { name: string })[];
    inputs: ValueInfoDef[];
    outputs: ValueInfoDef[];
  };
  metadata: Record<string, string>;
}

const LEN = 2;
const ELEM_TYPE_BY_CODE = new Map<number, ElemType>(Object.entries(ELEM_TYPE_CODE).map(([k, v]) => [v, k as ElemType]));

function fail(msg: string): never {
  throw new Error(`onnx decode: ${msg}`);
}

function toNumber(v: number | { toString(): string }): number {
  const n = typeof v === 'number' ? v : Number(v.toString());
  if (!Number.isSafeInteger(n)) fail(`integer ${v.toString()} is out of range`);
  return n;
}

/** Calls `field(fieldNumber, wireType)` for each field of the message ending at `end`. */
function fields(r: Reader, end: number, field: (no: number, wire: number) => boolean): void {
  while (r.pos < end) {
    const t = r.uint32();
    const no = t >>> 3;
    const wire = t & 7;
    if (!field(no, wire)) r.skipType(wire);
  }
}

function sub(r: Reader): number {
  const len = r.uint32();
  return r.pos + len;
}

function repeatedInt64(r: Reader, wire: number, out: number[]): void {
  if (wire === LEN) {
    const end = sub(r);
    while (r.pos < end) out.push(toNumber(r.int64()));
  } else out.push(toNumber(r.int64()));
}

function repeatedFloat(r: Reader, wire: number, out: number[]): void {
  if (wire === LEN) {
    const end = sub(r);
    while (r.pos < end) out.push(r.float());
  } else out.push(r.float());
}

function readTensor(r: Reader, end: number, context: string): OnnxTensor & { name: string } {
  const dims: number[] = [];
  let dataType = 0;
  let name = '';
  let raw: Uint8Array | undefined;
  const floats: number[] = [];
  const int64s: number[] = [];
  let external = false;
  fields(r, end, (no, wire) => {
    switch (no) {
      case 1:
        repeatedInt64(r, wire, dims);
        return true;
      case 2:
        dataType = r.int32();
        return true;
      case 4:
        repeatedFloat(r, wire, floats);
        return true;
      case 7:
        repeatedInt64(r, wire, int64s);
        return true;
      case 8:
        name = r.string();
        return true;
      case 9:
        raw = r.bytes();
        return true;
      case 14:
        external = r.int32() === 1;
        return true;
      default:
        return false;
    }
  });
  const label = name ? `tensor "${name}"` : context;
  if (external) fail(`${label} keeps its data in an external file; export the model with the weights embedded`);
  const count = dims.reduce((a, b) => a * b, 1);
  const type = ELEM_TYPE_BY_CODE.get(dataType);
  if (type === 'float') {
    let data: Float32Array;
    if (raw) {
      if (raw.byteLength !== 4 * count) fail(`${label} has ${raw.byteLength} bytes of data, dims [${dims.join(', ')}] need ${4 * count}`);
      data = new Float32Array(count);
      const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
      for (let i = 0; i < count; i++) data[i] = view.getFloat32(4 * i, true);
    } else data = Float32Array.from(floats);
    if (data.length !== count) fail(`${label} has ${data.length} values, dims [${dims.join(', ')}] need ${count}`);
    return { name, dataType: 'float', dims, data };
  }
  if (type === 'int64') {
    let data: BigInt64Array;
    if (raw) {
      if (raw.byteLength !== 8 * count) fail(`${label} has ${raw.byteLength} bytes of data, dims [${dims.join(', ')}] need ${8 * count}`);
      data = new BigInt64Array(count);
      const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
      for (let i = 0; i < count; i++) data[i] = view.getBigInt64(8 * i, true);
    } else data = BigInt64Array.from(int64s, (v) => BigInt(v));
    if (data.length !== count) fail(`${label} has ${data.length} values, dims [${dims.join(', ')}] need ${count}`);
    return { name, dataType: 'int64', dims, data };
  }
  return fail(`${label} has element type ${type ?? `#${dataType}`}; only float and int64 tensors are supported`);
}

function readAttribute(r: Reader, end: number, node: string): [string, AttrValue] {
  let name = '';
  let type = 0;
  let f = 0;
  let i = 0;
  let s = '';
  let t: OnnxTensor | undefined;
  const floats: number[] = [];
  const ints: number[] = [];
  fields(r, end, (no, wire) => {
    switch (no) {
      case 1:
        name = r.string();
        return true;
      case 20:
        type = r.int32();
        return true;
      case 2:
        f = r.float();
        return true;
      case 3:
        i = toNumber(r.int64());
        return true;
      case 4:
        s = Buffer.from(r.bytes()).toString('utf8');
        return true;
      case 5: {
        const e = sub(r);
        t = readTensor(r, e, `attribute ${name} of node ${node}`);
        return true;
      }
      case 7:
        repeatedFloat(r, wire, floats);
        return true;
      case 8:
        repeatedInt64(r, wire, ints);
        return true;
      default:
        return false;
    }
  });
  switch (type) {
    case 1:
      return [name, { type: 'float', value: f }];
    case 2:
      return [name, { type: 'int', value: i }];
    case 3:
      return [name, { type: 'string', value: s }];
    case 4: {
      if (!t) fail(`attribute ${name} of node ${node} is a tensor without a value`);
      const { dataType, dims, data } = t as OnnxTensor;
      return [name, { type: 'tensor', value: { dataType, dims, data } as OnnxTensor }];
    }
    case 6:
      return [name, { type: 'floats', value: floats }];
    case 7:
      return [name, { type: 'ints', value: ints }];
    default:
      return fail(`attribute ${name} of node ${node} has attribute type #${type}; graphs, strings lists and sparse tensors are not supported`);
  }
}

function readNode(r: Reader, end: number, index: number): NodeDef {
  const node: NodeDef = { opType: '', name: '', inputs: [], outputs: [], attributes: [] };
  const attrEnds: [number, number][] = [];
  fields(r, end, (no) => {
    switch (no) {
      case 1:
        node.inputs.push(r.string());
        return true;
      case 2:
        node.outputs.push(r.string());
        return true;
      case 3:
        node.name = r.string();
        return true;
      case 4:
        node.opType = r.string();
        return true;
      case 5: {
        // Attributes are read after the name is known, for error messages.
        const e = sub(r);
        attrEnds.push([r.pos, e]);
        r.pos = e;
        return true;
      }
      case 7:
        node.domain = r.string();
        return true;
      default:
        return false;
    }
  });
  if (!node.name) node.name = `${node.opType}_${index}`;
  for (const [start, e] of attrEnds) {
    const saved = r.pos;
    r.pos = start;
    node.attributes.push(readAttribute(r, e, node.name));
    r.pos = saved;
  }
  return node;
}

function readValueInfo(r: Reader, end: number): ValueInfoDef {
  let name = '';
  let elemType: ElemType | undefined;
  let elemCode = 0;
  let shape: Dim[] | undefined;
  fields(r, end, (no) => {
    if (no === 1) {
      name = r.string();
      return true;
    }
    if (no !== 2) return false;
    fields(r, sub(r), (typeNo) => {
      if (typeNo !== 1) return false; // only tensor types
      fields(r, sub(r), (tNo) => {
        if (tNo === 1) {
          elemCode = r.int32();
          elemType = ELEM_TYPE_BY_CODE.get(elemCode);
          return true;
        }
        if (tNo !== 2) return false;
        shape = [];
        fields(r, sub(r), (sNo) => {
          if (sNo !== 1) return false;
          let dim: Dim = '?';
          fields(r, sub(r), (dNo) => {
            if (dNo === 1) dim = toNumber(r.int64());
            else if (dNo === 2) dim = r.string();
            else return false;
            return true;
          });
          shape!.push(dim);
          return true;
        });
        return true;
      });
      return true;
    });
    return true;
  });
  if (!elemType) fail(`value "${name}" has element type #${elemCode}; only float, int64, int32, uint8, bool and double are supported`);
  return { name, elemType, shape };
}

/** Decodes an ONNX ModelProto. */
export function decodeModel(bytes: Uint8Array): DecodedModel {
  if (!(bytes instanceof Uint8Array) || bytes.byteLength === 0) fail('expected the non-empty bytes of an .onnx file');
  const r = Reader.create(bytes);
  const model: DecodedModel = {
    irVersion: 0,
    producerName: '',
    producerVersion: '',
    opsets: new Map(),
    graph: { name: '', nodes: [], initializers: [], inputs: [], outputs: [] },
    metadata: {},
  };
  let sawGraph = false;
  try {
    fields(r, r.len, (no) => {
      switch (no) {
        case 1:
          model.irVersion = toNumber(r.int64());
          return true;
        case 2:
          model.producerName = r.string();
          return true;
        case 3:
          model.producerVersion = r.string();
          return true;
        case 7:
          sawGraph = true;
          readGraph(r, sub(r), model.graph);
          return true;
        case 8: {
          let domain = '';
          let version = 0;
          fields(r, sub(r), (oNo) => {
            if (oNo === 1) domain = r.string();
            else if (oNo === 2) version = toNumber(r.int64());
            else return false;
            return true;
          });
          model.opsets.set(domain === 'ai.onnx' ? '' : domain, version);
          return true;
        }
        case 14: {
          let key = '';
          let value = '';
          fields(r, sub(r), (mNo) => {
            if (mNo === 1) key = r.string();
            else if (mNo === 2) value = r.string();
            else return false;
            return true;
          });
          model.metadata[key] = value;
          return true;
        }
        case 20:
          return fail('the model defines local functions; export it with functions inlined');
        default:
          return false;
      }
    });
  } catch (e) {
    if (e instanceof Error && e.message.startsWith('onnx decode:')) throw e;
    fail(`not a valid ONNX model (${(e as Error).message})`);
  }
  if (!sawGraph) fail('the model has no graph');
  return model;
}

function readGraph(r: Reader, end: number, graph: DecodedModel['graph']): void {
  fields(r, end, (no) => {
    switch (no) {
      case 1:
        graph.nodes.push(readNode(r, sub(r), graph.nodes.length));
        return true;
      case 2:
        graph.name = r.string();
        return true;
      case 5: {
        const t = readTensor(r, sub(r), `initializer #${graph.initializers.length}`);
        if (!t.name) fail(`initializer #${graph.initializers.length} has no name`);
        graph.initializers.push(t);
        return true;
      }
      case 11:
        graph.inputs.push(readValueInfo(r, sub(r)));
        return true;
      case 12:
        graph.outputs.push(readValueInfo(r, sub(r)));
        return true;
      case 15:
        return fail('the graph has sparse initializers; export the model with dense weights');
      default:
        return false;
    }
  });
}
