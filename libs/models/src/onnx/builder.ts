import { AttrValue, Dim, ElemType, encodeModel, ModelDef, NodeDef, OnnxTensor, ValueInfoDef } from './proto';

/** Typed attribute constructors for the cases a bare value can't express. */
export const attr = {
  float: (value: number): AttrValue => ({ type: 'float', value }),
  floats: (value: number[]): AttrValue => ({ type: 'floats', value }),
  int: (value: number): AttrValue => ({ type: 'int', value }),
  ints: (value: number[]): AttrValue => ({ type: 'ints', value }),
  string: (value: string): AttrValue => ({ type: 'string', value }),
  tensor: (value: OnnxTensor): AttrValue => ({ type: 'tensor', value }),
};

/** Bare integer = INT, integer array = INTS, string = STRING; anything else via `attr.*`. */
export type AttrInput = number | number[] | string | AttrValue;

function checkTensor<T extends OnnxTensor>(t: T): T {
  const expected = t.dims.reduce((a, b) => a * b, 1);
  if (!t.dims.every((d) => Number.isSafeInteger(d) && d >= 0) || expected !== t.data.length) {
    throw new Error(`onnx: tensor has ${t.data.length} elements but dims [${t.dims.join(', ')}] need ${expected}`);
  }
  return t;
}

export function floatTensor(dims: number[], data: Float32Array | number[]): OnnxTensor {
  return checkTensor({ dataType: 'float', dims, data: data instanceof Float32Array ? data : Float32Array.from(data) });
}

export function int64Tensor(dims: number[], data: BigInt64Array | number[]): OnnxTensor {
  return checkTensor({ dataType: 'int64', dims, data: data instanceof BigInt64Array ? data : BigInt64Array.from(data, (v) => BigInt(v)) });
}

function toAttr(opType: string, name: string, v: AttrInput): AttrValue {
  if (typeof v === 'string') return attr.string(v);
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) throw new Error(`onnx: ${opType}.${name}=${v} is not an integer; use attr.float()`);
    return attr.int(v);
  }
  if (Array.isArray(v)) {
    if (!v.every(Number.isInteger)) throw new Error(`onnx: ${opType}.${name} has non-integers; use attr.floats()`);
    return attr.ints(v);
  }
  return v;
}

export interface BuilderOptions {
  opsetVersion?: number;
  irVersion?: number;
  producerName?: string;
  producerVersion?: string;
}

/**
 * Fluent builder for a single-graph ONNX model (default domain, opset 13,
 * IR version 7). Node inputs must refer to a graph input, an initializer or
 * an earlier node output; `toBuffer()` checks this so wiring mistakes fail
 * here rather than as an opaque onnxruntime load error.
 */
export class OnnxGraphBuilder {
  private readonly inputs: ValueInfoDef[] = [];
  private readonly outputs: ValueInfoDef[] = [];
  private readonly nodes: NodeDef[] = [];
  private readonly initializers: (OnnxTensor & { name: string })[] = [];
  private readonly defined = new Set<string>();
  private readonly metadata: Record<string, string> = {};
  private counter = 0;

  constructor(
    readonly name: string,
    private readonly options: BuilderOptions = {},
  ) {}

  /** `shape` undefined = rank unknown. */
  input(name: string, elemType: ElemType, shape?: Dim[]): string {
    this.define(name);
    this.inputs.push({ name, elemType, shape });
    return name;
  }

  /** Declares `name` (already produced by a node or an input) as a graph output. */
  output(name: string, elemType: ElemType, shape?: Dim[]): string {
    this.outputs.push({ name, elemType, shape });
    return name;
  }

  initializer(name: string, tensor: OnnxTensor): string {
    checkTensor(tensor);
    this.define(name);
    this.initializers.push({ ...tensor, name });
    return name;
  }

  /** A Constant node holding `tensor`; returns its output name. */
  constant(tensor: OnnxTensor, name = this.fresh('const')): string {
    return this.node('Constant', [], [name], { value: attr.tensor(tensor) })[0];
  }

  node(opType: string, inputs: string[], outputs: string[], attributes: Record<string, AttrInput> = {}, name?: string): string[] {
    const attrs = Object.entries(attributes).map(([k, v]): [string, AttrValue] => [k, toAttr(opType, k, v)]);
    for (const o of outputs) this.define(o);
    this.nodes.push({ opType, name: name ?? this.fresh(opType), inputs, outputs, attributes: attrs });
    return outputs;
  }

  /** Single-output node with a generated output name; returns that name. */
  op(opType: string, inputs: string[], attributes: Record<string, AttrInput> = {}, output?: string): string {
    return this.node(opType, inputs, [output ?? this.fresh(opType.toLowerCase())], attributes)[0];
  }

  setMetadata(key: string, value: string): this {
    this.metadata[key] = value;
    return this;
  }

  fresh(prefix: string): string {
    let name: string;
    do name = `${prefix}_${this.counter++}`;
    while (this.defined.has(name));
    return name;
  }

  toModel(): ModelDef {
    this.validate();
    return {
      irVersion: this.options.irVersion ?? 7,
      opsetVersion: this.options.opsetVersion ?? 13,
      producerName: this.options.producerName ?? 'fl-models',
      producerVersion: this.options.producerVersion ?? '1',
      graph: { name: this.name, nodes: this.nodes, initializers: this.initializers, inputs: this.inputs, outputs: this.outputs },
      metadata: this.metadata,
    };
  }

  toBuffer(): Buffer {
    return encodeModel(this.toModel());
  }

  private define(name: string): void {
    if (!name) throw new Error('onnx: value names must be non-empty');
    if (this.defined.has(name)) throw new Error(`onnx: value "${name}" is defined twice in graph "${this.name}"`);
    this.defined.add(name);
  }

  private validate(): void {
    const available = new Set<string>([...this.inputs.map((i) => i.name), ...this.initializers.map((i) => i.name)]);
    for (const n of this.nodes) {
      for (const i of n.inputs) {
        // '' marks an omitted optional input.
        if (i !== '' && !available.has(i)) throw new Error(`onnx: node ${n.name} (${n.opType}) reads undefined value "${i}"`);
      }
      for (const o of n.outputs) available.add(o);
    }
    for (const o of this.outputs) {
      if (!available.has(o.name)) throw new Error(`onnx: graph output "${o.name}" is never produced`);
    }
  }
}
