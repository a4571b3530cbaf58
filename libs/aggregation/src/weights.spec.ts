import { weights } from '../test/support';
import { checkUpdate, UpdateRejectedError, WeightMap } from './weights';

describe('checkUpdate', () => {
  const template = weights(new Array(9).fill(0));
  const rejection = (f: () => unknown): UpdateRejectedError => {
    try {
      f();
    } catch (e) {
      if (e instanceof UpdateRejectedError) return e;
      throw e;
    }
    throw new Error('not rejected');
  };

  it('names each problem with a stable code', () => {
    const ok = weights([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(rejection(() => checkUpdate(template, ok, 0))).toMatchObject({ code: 'bad-example-count' });
    expect(rejection(() => checkUpdate(template, ok, 2.5))).toMatchObject({ code: 'bad-example-count' });
    expect(rejection(() => checkUpdate(template, ok, 11, { maxExamples: 10 }))).toMatchObject({ code: 'too-many-examples', reason: 'example count 11 is beyond the 10 the worker registered' });
    const missing: WeightMap = new Map([...ok].slice(0, 1));
    expect(rejection(() => checkUpdate(template, missing, 1))).toMatchObject({ code: 'missing-parameter', reason: "missing parameter 'layer.bias'" });
    const dtype = weights([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    dtype.set('layer.bias', { shape: [3], data: new Float64Array(3) as unknown as Float32Array });
    expect(rejection(() => checkUpdate(template, dtype, 1))).toMatchObject({ code: 'wrong-dtype' });
    const shape = weights([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    shape.set('layer.weight', { shape: [3, 2], data: new Float32Array(6) });
    expect(rejection(() => checkUpdate(template, shape, 1))).toMatchObject({ code: 'wrong-shape', reason: "parameter 'layer.weight' has shape [3,2], expected [2,3]" });
    expect(rejection(() => checkUpdate(template, weights([1, 2, 3, 4, Infinity, 6, 7, 8, 9]), 1))).toMatchObject({
      code: 'non-finite',
      reason: "parameter 'layer.weight' holds a non-finite value at index 4",
    });
    expect(rejection(() => checkUpdate(template, weights([1, 2, 3, 4, 5, 6, 7, 8, NaN]), 1))).toMatchObject({ code: 'non-finite' });
  });

  it('measures the L2 norm of the difference to the reference and enforces the bound', () => {
    const ref = weights([1, 1, 1, 1, 1, 1, 1, 1, 1]);
    const u = weights([4, 5, 1, 1, 1, 1, 1, 1, 1]); // difference (3, 4, 0, ...), norm 5
    expect(checkUpdate(template, u, 1, { reference: ref })).toBeCloseTo(5, 12);
    expect(checkUpdate(template, u, 1, { reference: ref, maxL2Norm: 5 })).toBeCloseTo(5, 12);
    expect(rejection(() => checkUpdate(template, u, 1, { reference: ref, maxL2Norm: 4.9 }))).toMatchObject({ code: 'norm-too-large' });
    expect(rejection(() => checkUpdate(template, u, 1, { maxL2Norm: 5 })).reason).toContain('L2 norm of the weights');
  });
});
