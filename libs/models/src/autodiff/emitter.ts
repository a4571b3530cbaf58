/**
 * Graph-writing helpers shared by the gradient rules, losses and optimizers:
 * a builder plus statically inferred shapes, cached constants and the
 * broadcasting reduction every elementwise gradient needs.
 */
import { attr, AttrInput, floatTensor, int64Tensor, OnnxGraphBuilder, OnnxTensor } from '../onnx';

/** A statically known dimension, or null when it is only known at run time (the batch size). */
export type StaticDim = number | null;
/** undefined = rank unknown. */
export type StaticShape = StaticDim[] | undefined;

export const FLOAT_TYPE = 1; // TensorProto.DataType.FLOAT, for Cast
export const BOOL_TYPE = 9;

export class GraphEmitter {
  readonly shapes = new Map<string, StaticShape>();
  /** Values of int64 constants and initializers (Reshape targets). */
  readonly intValues = new Map<string, number[]>();
  private readonly floatScalars = new Map<number, string>();
  private readonly intVectors = new Map<string, string>();

  /** `reserved`: names the imported graph uses, so generated names never collide with them. */
  constructor(
    readonly g: OnnxGraphBuilder,
    private readonly reserved: ReadonlySet<string> = new Set(),
  ) {}

  op(opType: string, inputs: string[], attributes: Record<string, AttrInput> = {}, output?: string): string {
    return this.g.op(opType, inputs, attributes, output ?? this.fresh(opType.toLowerCase()));
  }

  constant(tensor: OnnxTensor): string {
    return this.g.constant(tensor, this.fresh('const'));
  }

  fresh(prefix: string): string {
    let name: string;
    do name = this.g.fresh(prefix);
    while (this.reserved.has(name));
    return name;
  }

  shape(value: string): StaticShape {
    return this.shapes.get(value);
  }

  /** A float32 scalar constant, one node per distinct value. */
  scalar(v: number): string {
    let name = this.floatScalars.get(v);
    if (!name) {
      name = this.constant(floatTensor([], [v]));
      this.floatScalars.set(v, name);
      this.shapes.set(name, []);
    }
    return name;
  }

  /** A 1-D int64 constant (axes, shapes, pads). */
  ints(values: number[]): string {
    const key = values.join(',');
    let name = this.intVectors.get(key);
    if (!name) {
      name = this.constant(int64Tensor([values.length], values));
      this.intVectors.set(key, name);
      this.shapes.set(name, [values.length]);
      this.intValues.set(name, values);
    }
    return name;
  }

  mul(a: string, b: string): string {
    return this.op('Mul', [a, b]);
  }

  /** Float scalar holding the element count of `value` (computed at run time). */
  elementCount(value: string): string {
    const known = this.shape(value);
    if (known && known.every((d) => d !== null)) return this.scalar((known as number[]).reduce((a, b) => a * b, 1));
    return this.op('Cast', [this.op('Size', [value])], { to: FLOAT_TYPE });
  }

  /** Sum of all elements as a float scalar. */
  sumAll(value: string): string {
    return this.op('ReduceSum', [value], { keepdims: 0 });
  }

  /**
   * Reduces `grad` (shaped like a broadcast result) back to the shape of
   * `operand`: sums over the leading axes the operand lacks and over the axes
   * where it has size 1. Static when the shapes allow, else computed in-graph.
   */
  sumToShape(grad: string, gShape: StaticShape, operand: string, other?: string): string {
    const tShape = this.shape(operand);
    if (gShape && tShape) {
      const lead = gShape.length - tShape.length;
      if (lead >= 0 && tShape.every((d) => d !== null)) {
        const axes: number[] = [];
        for (let i = 0; i < lead; i++) axes.push(i);
        tShape.forEach((d, i) => {
          if (d === 1 && gShape[lead + i] !== 1) axes.push(lead + i);
        });
        if (axes.length === 0) return grad;
        const reduced = this.op('ReduceSum', [grad, this.ints(axes)], { keepdims: 1 });
        return lead > 0 ? this.op('Reshape', [reduced, this.ints(tShape as number[])]) : reduced;
      }
      // Operand with run-time dims: no reduction when it is the larger side.
      const oShape = other === undefined ? undefined : this.shape(other);
      if (lead === 0 && oShape && oShape.length <= tShape.length) {
        const off = tShape.length - oShape.length;
        const operandIsFull = oShape.every((d, i) => d === 1 || d === tShape[off + i]);
        if (operandIsFull && tShape.every((d, i) => d === null || d === gShape[i])) return grad;
      }
    }
    return this.dynamicSumToShape(grad, operand);
  }

  private dynamicSumToShape(grad: string, operand: string): string {
    const gs = this.op('Shape', [grad]);
    const ts = this.op('Shape', [operand]);
    const missing = this.op('Sub', [this.op('Size', [gs]), this.op('Size', [ts])]);
    const ones = this.op('ConstantOfShape', [this.op('Reshape', [missing, this.ints([1])])], { value: attr.tensor(int64Tensor([1], [1])) });
    const padded = this.op('Concat', [ones, ts], { axis: 0 });
    const one = this.ints([1]);
    const mask = this.op('And', [this.op('Equal', [padded, one]), this.op('Not', [this.op('Equal', [gs, one])])]);
    const axes = this.op('Reshape', [this.op('NonZero', [mask]), this.ints([-1])]);
    const reduced = this.op('ReduceSum', [grad, axes], { keepdims: 1, noop_with_empty_axes: 1 });
    return this.op('Reshape', [reduced, ts]);
  }

  /**
   * Cuts or zero-pads the spatial end of a [N, C, H', W'] tensor to the
   * spatial size of `like` ([N, C, H, W]); Pad with negative amounts crops.
   */
  fitSpatialTo(value: string, like: string): string {
    const spatial = (v: string) => this.op('Slice', [this.op('Shape', [v]), this.ints([2]), this.ints([4])]);
    const diff = this.op('Sub', [spatial(like), spatial(value)]);
    const pads = this.op('Concat', [this.ints([0, 0, 0, 0, 0, 0]), diff], { axis: 0 });
    return this.op('Pad', [value, pads]);
  }
}
