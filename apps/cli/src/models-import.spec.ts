/** @jest-environment ./libs/models/test/ort-environment.js */
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { getUseCase, IRIS, modelInputs } from '@fl/datasets';
import { createModelRunner, floatTensor, ImportedModelManifest, OnnxGraphBuilder, readModelPackage, UnsupportedModelError } from '@fl/models';
import { createDataSource, runMigrations, startEmbeddedPostgres } from '@fl/persistence';
import { LocalModelRegistry } from '@fl/registry';
import { resolveUseCase } from '@fl/runtime';
import { buildImportPackage, MAX_ONNX_IMPORT_BYTES, parseImportArgs, publishImportedPackage, readOnnxFile } from './models-import';
import { UsageError } from './usage-error';

const FIXTURES = join(__dirname, '..', '..', '..', 'libs', 'models', 'test', 'fixtures');
const MLP = join(FIXTURES, 'torch_mlp.onnx');
const CNN = join(FIXTURES, 'torch_cnn.onnx');

describe('models import: arguments', () => {
  it('reads the file, use case and loss; the optimizer defaults to sgd and the name to the file name', () => {
    expect(parseImportArgs([MLP, '--use-case', 'iris', '--loss', 'softmax_cross_entropy'])).toEqual({
      file: MLP,
      useCase: 'iris',
      loss: 'softmax_cross_entropy',
      optimizer: 'sgd',
      name: 'torch_mlp',
      learningRate: undefined,
      noNormalization: false,
    });
    expect(parseImportArgs(['--optimizer', 'momentum', '--name', 'mine', 'm.onnx', '--loss', 'mean_squared_error', '--use-case', 'x', '--learning-rate', '0.05'])).toMatchObject({
      optimizer: 'sgd_momentum',
      name: 'mine',
      learningRate: 0.05,
    });
  });

  it.each<[string[], RegExp]>([
    [['--use-case', 'iris', '--loss', 'softmax_cross_entropy'], /needs exactly one ONNX file, got none/],
    [['a.onnx', 'b.onnx', '--use-case', 'iris', '--loss', 'softmax_cross_entropy'], /exactly one ONNX file, got a.onnx b.onnx/],
    [['a.onnx', '--loss', 'softmax_cross_entropy'], /needs --use-case <name>/],
    [['a.onnx', '--use-case', 'iris'], /needs --loss <softmax_cross_entropy\|binary_cross_entropy_with_logits\|mean_squared_error>/],
    [['a.onnx', '--use-case', 'iris', '--loss', 'hinge'], /unknown loss 'hinge'; expected one of softmax_cross_entropy, /],
    [['a.onnx', '--use-case', 'iris', '--loss', 'softmax_cross_entropy', '--optimizer', 'rmsprop'], /unknown optimizer 'rmsprop'; expected one of sgd, momentum, adam, adamw/],
    [['a.onnx', '--use-case', 'iris', '--loss', 'softmax_cross_entropy', '--epochs', '3'], /unknown option --epochs/],
    [['a.onnx', '--use-case', '--loss', 'softmax_cross_entropy'], /--use-case needs a value/],
    [['a.onnx', '--use-case', 'iris', '--loss', 'softmax_cross_entropy', '--learning-rate', '-1'], /--learning-rate must be a number > 0, got '-1'/],
  ])('%j is a usage error', (args, message) => {
    expect(() => parseImportArgs(args)).toThrow(UsageError);
    expect(() => parseImportArgs(args)).toThrow(message);
  });
});

describe('models import: reading the file', () => {
  let dir: string;
  beforeAll(() => (dir = mkdtempSync(join(tmpdir(), 'fl-import-'))));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('refuses a file above the size limit before reading it', () => {
    const big = join(dir, 'big.onnx');
    writeFileSync(big, '');
    truncateSync(big, MAX_ONNX_IMPORT_BYTES + 1); // sparse: no disk used
    expect(() => readOnnxFile(big)).toThrow(`models import: ${big} is 512.0 MiB; model imports are limited to 512.0 MiB`);
    expect(() => readOnnxFile(MLP, 100)).toThrow(/torch_mlp.onnx is 0.0 MiB; model imports are limited to 0.0 MiB/);
  });

  it('names a missing file, a folder and an empty file', () => {
    expect(() => readOnnxFile(join(dir, 'nope.onnx'))).toThrow(`models import: cannot open ${join(dir, 'nope.onnx')}: no such file`);
    expect(() => readOnnxFile(dir)).toThrow(/is not a file/);
    writeFileSync(join(dir, 'empty.onnx'), '');
    expect(() => readOnnxFile(join(dir, 'empty.onnx'))).toThrow(/empty.onnx is empty/);
  });
});

describe('models import: the package', () => {
  const args = (over: Partial<ReturnType<typeof parseImportArgs>> = {}) => ({ ...parseImportArgs([MLP, '--use-case', 'iris', '--loss', 'softmax_cross_entropy']), ...over });

  it("takes the use case's inputs, classes and normalisation", () => {
    const { pkg, useCase } = buildImportPackage(args(), readOnnxFile(MLP));
    const m = pkg.manifest as ImportedModelManifest;
    const iris = getUseCase('iris');
    const inputs = modelInputs(iris);
    expect(useCase.name).toBe('iris');
    expect(m.inputs.features).toEqual(inputs.names);
    expect(m.classes).toEqual(iris.label.classes);
    expect(m.normalization).toEqual({ mean: inputs.mean, std: inputs.std });
    expect(m.defaults).toEqual({ ...iris.model.defaults });
    expect(m.source!.file).toBe('torch_mlp.onnx');
    expect((buildImportPackage(args({ optimizer: 'adam' }), readOnnxFile(MLP)).pkg.manifest as ImportedModelManifest).defaults.learning_rate).toBe(0.001);
    expect((buildImportPackage(args({ noNormalization: true }), readOnnxFile(MLP)).pkg.manifest as ImportedModelManifest).normalization).toBeNull();
  });

  it('refuses a graph that does not fit the use case, an unsupported op, and an unknown use case', () => {
    expect(() => buildImportPackage(args({ file: CNN }), readOnnxFile(CNN))).toThrow(/input "x" is \[N, 1, 8, 8\], 64 values per example, but use case 'iris' has 4 model inputs/);
    expect(() => buildImportPackage(args({ useCase: 'no_such_case' }), readOnnxFile(MLP))).toThrow(/unknown use case 'no_such_case'/);
    expect(() => buildImportPackage(args(), Buffer.from('not an onnx file'))).toThrow(/onnx decode/);
    const g = new OnnxGraphBuilder('erf');
    g.input('x', 'float', ['N', 4]);
    g.initializer('w', floatTensor([4, 3], new Float32Array(12).fill(0.1)));
    g.node('Erf', [g.op('MatMul', ['x', 'w'])], ['logits'], {}, 'gelu/erf');
    g.output('logits', 'float', ['N', 3]);
    const unsupported = () => buildImportPackage(args(), g.toBuffer());
    expect(unsupported).toThrow(UnsupportedModelError);
    expect(unsupported).toThrow(/unsupported op Erf in node "gelu\/erf"/);
  });
});

describe('models import: publishing', () => {
  jest.setTimeout(120_000);
  let dir: string;
  let registry: LocalModelRegistry;
  let ds: DataSource;
  let teardown: () => Promise<void>;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fl-import-registry-'));
    const pg = await startEmbeddedPostgres({ dataDir: join(dir, 'pgdata') });
    ds = createDataSource({ url: pg.url, poolSize: 1, applicationName: 'models-import-spec' });
    await runMigrations(ds);
    registry = new LocalModelRegistry({ dataSource: ds, artifactDir: join(dir, 'artifacts') });
    teardown = async () => {
      await ds.destroy();
      await pg.close();
    };
  });
  afterAll(async () => {
    await teardown?.();
    rmSync(dir, { recursive: true, force: true });
  });

  it('publishes once, tagged with the use case; the coordinator reads the package back and a worker runs it', async () => {
    const { pkg } = buildImportPackage(
      { ...parseImportArgs([MLP, '--use-case', 'iris', '--loss', 'softmax_cross_entropy', '--optimizer', 'adam', '--name', 'mlp_iris']) },
      readOnnxFile(MLP),
    );
    const first = await publishImportedPackage(registry, pkg, 'iris');
    expect(first).toMatchObject({ created: true, version: { name: 'mlp_iris', version: 1, tags: expect.objectContaining({ use_case: 'iris' }) } });
    const again = await publishImportedPackage(registry, pkg, 'iris');
    expect(again).toMatchObject({ created: false, version: { version: 1 } });

    const files: Record<string, Buffer> = {};
    for (const a of await registry.downloadArtifacts('mlp_iris', 1)) files[a.path] = a.data;
    expect(Object.keys(files).sort()).toEqual(['inference.onnx', 'manifest.json', 'optimizer_state.safetensors', 'train_step.onnx', 'train_step_fedprox.onnx', 'weights.safetensors']);
    const back = readModelPackage(files);
    expect(back.manifest).toEqual(pkg.manifest);
    const runner = await createModelRunner(back);
    try {
      const x = Float32Array.of(5.1, 3.5, 1.4, 0.2, 6.7, 3.0, 5.2, 2.3);
      const r = await runner.evaluate(back.initialWeights, { x, labels: Int32Array.of(0, 2), n: 2 });
      expect(r.examples).toBe(2);
      expect(Number.isFinite(r.loss)).toBe(true);
    } finally {
      await runner.release();
    }
  });

  it('finds a use case stored at the gateway in the database; names one that neither files nor the database have', async () => {
    const petals = { ...IRIS, name: 'petals', description: 'iris stored at the gateway' };
    await ds.query(`INSERT INTO gateway.use_cases (name, definition, created_by) VALUES ('petals', $1::jsonb, 'spec')`, [JSON.stringify(petals)]);
    const a = parseImportArgs([MLP, '--use-case', 'petals', '--loss', 'softmax_cross_entropy']);
    const { pkg, useCase } = buildImportPackage(a, readOnnxFile(MLP), await resolveUseCase('petals', ds));
    expect(useCase.name).toBe('petals');
    expect(pkg.manifest.name).toBe('torch_mlp');
    expect((await resolveUseCase('iris', ds)).name).toBe('iris');
    await expect(resolveUseCase('heart', ds)).rejects.toThrow(/^unknown use case 'heart' \(files: .*iris.*; none stored at the gateway by that name\)$/);
    await expect(resolveUseCase('petals', undefined)).rejects.toThrow(/unknown use case 'petals' .*stored use cases were not searched: no database/);
  });
});
