/** @jest-environment ./libs/models/test/ort-environment.js */
import * as ort from 'onnxruntime-node';
import { attr, floatTensor, int64Tensor, OnnxGraphBuilder } from './builder';

async function run(model: Buffer, feeds: Record<string, ort.Tensor>) {
  const session = await ort.InferenceSession.create(model);
  try {
    return await session.run(feeds);
  } finally {
    await session.release();
  }
}

describe('OnnxGraphBuilder', () => {
  it('builds a model onnxruntime can load and run, with every attribute kind', async () => {
    const g = new OnnxGraphBuilder('attrs');
    g.input('x', 'float', ['N', 3]);
    g.initializer('w', floatTensor([2, 3], [1, 0, 0, 0, 1, 1]));
    g.initializer('shape', int64Tensor([2], [-1, 1]));
    const bias = g.constant(floatTensor([2], [10, 20])); // tensor attribute
    g.node('Gemm', ['x', 'w', bias], ['y'], { transB: 1, alpha: attr.float(2), beta: attr.float(0.5) }); // int + float
    g.node('Constant', [], ['fs'], { value_floats: attr.floats([1.5, -2.5]) }); // floats
    g.node('Constant', [], ['is'], { value_ints: [7, -8, 2 ** 40] }); // ints, incl. negative and > 32 bit
    g.node('Transpose', ['y'], ['yt'], { perm: [1, 0] });
    g.node('Reshape', ['yt', 'shape'], ['flat']);
    g.node('ReduceSum', ['x'], ['total'], { keepdims: 0 });
    g.output('y', 'float', ['N', 2]);
    g.output('fs', 'float', [2]);
    g.output('is', 'int64', [3]);
    g.output('flat', 'float');
    g.output('total', 'float', []);
    g.setMetadata('purpose', 'test');

    const out = await run(g.toBuffer(), { x: new ort.Tensor('float32', Float32Array.of(1, 2, 3, 4, 5, 6), [2, 3]) });
    // y = 2 * x·wᵀ + 0.5 * bias
    expect(Array.from(out.y.data as Float32Array)).toEqual([2 + 5, 10 + 10, 8 + 5, 22 + 10]);
    expect(Array.from(out.fs.data as Float32Array)).toEqual([1.5, -2.5]);
    expect(Array.from(out.is.data as BigInt64Array)).toEqual([7n, -8n, 2n ** 40n]);
    expect(out.flat.dims).toEqual([4, 1]);
    expect(Array.from(out.flat.data as Float32Array)).toEqual([7, 13, 20, 32]);
    expect(out.total.dims).toEqual([]);
    expect((out.total.data as Float32Array)[0]).toBe(21);
  });

  it('checks wiring and attribute types before encoding', () => {
    const g = new OnnxGraphBuilder('bad');
    g.input('x', 'float', [1]);
    expect(() => g.input('x', 'float', [1])).toThrow('value "x" is defined twice');
    expect(() => g.node('Gemm', ['x', 'x'], ['y'], { alpha: 0.5 })).toThrow('Gemm.alpha=0.5 is not an integer; use attr.float()');
    g.node('Add', ['x', 'missing'], ['z']);
    expect(() => g.toBuffer()).toThrow('node Add_0 (Add) reads undefined value "missing"');

    const h = new OnnxGraphBuilder('bad-output');
    h.input('x', 'float', [1]);
    h.output('nope', 'float');
    expect(() => h.toBuffer()).toThrow('graph output "nope" is never produced');
    expect(() => floatTensor([2, 2], [1, 2, 3])).toThrow('tensor has 3 elements but dims [2, 2] need 4');
    expect(() => h.initializer('t', { dataType: 'float', dims: [2], data: new Float32Array(3) })).toThrow('need 2');
  });
});
