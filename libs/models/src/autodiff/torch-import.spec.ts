/** @jest-environment ./libs/models/test/ort-environment.js */
import { readFileSync } from 'fs';
import { join } from 'path';
import { decodeSafetensors } from '../safetensors';
import { tensor, TrainStepSession } from '../test/autodiff-check';

/** Graphs and PyTorch's first SGD step from libs/models/test/fixtures/export_torch_models.py. */
const FIXTURES = join(__dirname, '..', '..', 'test', 'fixtures');

describe.each(['torch_mlp', 'torch_cnn'])('%s exported by torch.onnx.export', (name) => {
  it("imports with its initializers as weights, and its first SGD step matches PyTorch's", async () => {
    const onnx = readFileSync(join(FIXTURES, `${name}.onnx`));
    const { tensors: ref, metadata } = decodeSafetensors(readFileSync(join(FIXTURES, `${name}.step.safetensors`)));
    const s = await TrainStepSession.create(onnx, { loss: 'softmax_cross_entropy', optimizer: 'sgd' });
    try {
      const expected = [...ref.keys()].filter((k) => k.endsWith('.next')).map((k) => k.slice(0, -'.next'.length));
      expect(s.model.parameters.map((p) => p.name).sort()).toEqual(expected.sort());
      const x = ref.get('x')!;
      const y = ref.get('y')!;
      const out = await s.run(s.model.initialWeights, tensor(x.data, x.shape), tensor(y.data, y.shape), { lr: Number(metadata.lr) });
      expect((out.loss.data as Float32Array)[0]).toBeCloseTo(ref.get('loss')!.data[0], 5);
      for (const p of expected) {
        const got = out[`${p}.next`].data as Float32Array;
        const want = ref.get(`${p}.next`)!.data;
        let worst = 0;
        for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]));
        expect({ p, worst: worst <= 2e-6 ? 'ok' : worst }).toEqual({ p, worst: 'ok' });
        // the step moved the weights
        expect(want.some((v, i) => v !== s.model.initialWeights.get(p)!.data[i])).toBe(true);
      }
    } finally {
      await s.release();
    }
  });
});
