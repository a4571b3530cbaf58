import fc from 'fast-check';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { builtInUseCasesDir, defaultUseCaseCatalog, getUseCase, IRIS, listUseCases, readUseCaseFile, UseCaseCatalog } from './use-case-catalog';
import { parseUseCase, UseCaseValidationError } from './use-case-schema';
import { modelInputs } from './labeled-data';
import { tempDirs } from '../test/temp-dirs';

const tempDir = tempDirs();

const irisJson = () => JSON.parse(readFileSync(join(builtInUseCasesDir(), 'iris.json'), 'utf8'));

function problemsOf(raw: unknown): { field: string; reason: string }[] {
  try {
    parseUseCase(raw, 'x.json');
  } catch (err) {
    expect(err).toBeInstanceOf(UseCaseValidationError);
    return (err as UseCaseValidationError).problems;
  }
  throw new Error('expected a validation error');
}

describe('use case files', () => {
  it('ships iris (the former built-in definition), breast_cancer and digits', () => {
    expect(listUseCases().map((u) => u.name)).toEqual(['breast_cancer', 'digits', 'iris']);
    expect(IRIS).toEqual({
      name: 'iris',
      description: "Fisher's iris: three species from four flower measurements in cm",
      features: ['sepal-length', 'sepal-width', 'petal-length', 'petal-width'].map((name) => ({ name, type: 'number' })),
      label: { column: 'class', classes: ['Iris-setosa', 'Iris-versicolor', 'Iris-virginica'] },
      missing_values: { strategy: 'reject', markers: ['', 'NA', 'NaN', '?'] },
      normalization: {
        method: 'standardize',
        mean: [5.84, 3.05, 3.76, 1.2],
        std: [0.83, 0.43, 1.76, 0.76],
        source: "summary statistics published with the data set's description (UCI iris.names), not computed from any site's rows",
      },
      model: { hidden: [], defaults: { learning_rate: 0.3, batch_size: 8, local_epochs: 10 } },
    });
    const bc = getUseCase('breast_cancer');
    expect(bc.features).toHaveLength(30);
    expect(bc.label).toEqual({ column: 'diagnosis', classes: ['malignant', 'benign'] });
    const digits = getUseCase('digits');
    expect(digits.features.map((f) => f.name)).toEqual(Array.from({ length: 64 }, (_, i) => `px${i}`));
    expect(digits.label.classes).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    expect(digits.model.hidden).toEqual([64]);
    // a scalar mean/std applies to every number feature
    expect(modelInputs(digits).std).toEqual(new Array(64).fill(16));
  });

  it('names every field at fault', () => {
    const bad = irisJson();
    bad.name = 'has space';
    bad.features[1].type = 'text';
    bad.label.classes = ['a', 'a'];
    bad.normalization.std = [1, 0, 1, 1];
    bad.model.hidden = [0];
    bad.model.defaults.batch_size = 2.5;
    bad.colour = 'blue';
    expect(problemsOf(bad)).toEqual([
      { field: 'colour', reason: expect.stringContaining('unknown field') },
      { field: 'name', reason: 'must be 1-64 letters, digits, _ or -' },
      { field: 'features[1].type', reason: "must be 'number' or 'categorical', got 'text'" },
      { field: 'label.classes[1]', reason: "duplicate class 'a'" },
      { field: 'normalization.std[1]', reason: 'must be greater than 0' },
      { field: 'model.hidden[0]', reason: 'must be at least 1' },
      { field: 'model.defaults.batch_size', reason: 'must be an integer' },
    ]);
    const short = irisJson();
    short.normalization.mean = [1, 2];
    delete short.label;
    short.features.push({ name: 'sepal-width', type: 'number' });
    short.missing_values = { strategy: 'constant' };
    expect(problemsOf(short)).toEqual([
      { field: 'features[4].name', reason: "duplicate column 'sepal-width' (also features[1])" },
      { field: 'label', reason: 'must be an object, got undefined' },
      { field: 'missing_values.value', reason: "is required with strategy 'constant'" },
      { field: 'normalization.mean', reason: 'must have one entry per number feature (5), got 2' },
      { field: 'normalization.std', reason: 'must have one entry per number feature (5), got 4' },
    ]);
    for (const raw of [null, 'iris', [], 3]) expect(problemsOf(raw)[0].field).toBe('body');
    expect(() => parseUseCase({ ...irisJson(), description: '' }, 'my/file.json')).toThrow("my/file.json: invalid use case: description: must not be empty");
  });

  it('takes federated statistics instead of mean and std: number inputs are standardised, one-hot ones are not', () => {
    const uc = parseUseCase(
      { ...irisJson(), features: [...irisJson().features, { name: 'site', type: 'categorical', values: ['a', 'b'] }], normalization: { method: 'standardize', statistics: 'federated' } },
      'f.json',
    );
    expect(uc.normalization).toEqual({ method: 'standardize', statistics: 'federated' });
    expect(modelInputs(uc)).toEqual({
      names: ['sepal-length', 'sepal-width', 'petal-length', 'petal-width', 'site=a', 'site=b'],
      mean: [0, 0, 0, 0, 0, 0],
      std: [1, 1, 1, 1, 1, 1],
      federated: [true, true, true, true, false, false],
    });
    expect(modelInputs(getUseCase('iris')).federated).toBeUndefined();
    expect(problemsOf({ ...irisJson(), normalization: { method: 'standardize', statistics: 'pooled' } })).toEqual([
      { field: 'normalization.statistics', reason: "must be 'federated' (or left out, with mean and std given), got 'pooled'" },
    ]);
    expect(problemsOf({ ...irisJson(), normalization: { method: 'standardize', statistics: 'federated', mean: 1 } })).toEqual([
      { field: 'normalization.mean', reason: expect.stringContaining('unknown field') },
    ]);
  });

  it('accepts categorical features, imputation and no normalisation', () => {
    const uc = parseUseCase(
      {
        name: 'clinic',
        description: 'a clinical table',
        features: [
          { name: 'age', type: 'number' },
          { name: 'sex', type: 'categorical', values: ['f', 'm'] },
        ],
        label: { column: 'outcome', classes: ['no', 'yes'] },
        missing_values: { strategy: 'constant', value: -1, markers: [''] },
        normalization: { method: 'none' },
        model: { hidden: [8, 4], defaults: { learning_rate: 0.05, batch_size: 4, local_epochs: 2 } },
      },
      'clinic.json',
    );
    expect(modelInputs(uc)).toEqual({ names: ['age', 'sex=f', 'sex=m'], mean: [0, 0, 0], std: [1, 1, 1] });
    expect(uc.missing_values).toEqual({ strategy: 'constant', value: -1, markers: [''] });
  });

  it('reads USE_CASES_DIR beside the shipped files and refuses a bad or clashing file by name', () => {
    const dir = tempDir('use-cases-');
    const heart = { ...irisJson(), name: 'heart', description: 'another table' };
    writeFileSync(join(dir, 'heart.json'), JSON.stringify(heart));
    const previous = process.env.USE_CASES_DIR;
    process.env.USE_CASES_DIR = dir;
    try {
      expect(defaultUseCaseCatalog().find('heart')?.description).toBe('another table');
      expect(defaultUseCaseCatalog().origin('heart')).toEqual({ kind: 'file', path: join(dir, 'heart.json') });
    } finally {
      if (previous === undefined) delete process.env.USE_CASES_DIR;
      else process.env.USE_CASES_DIR = previous;
    }
    expect(defaultUseCaseCatalog().find('heart')).toBeUndefined();

    writeFileSync(join(dir, 'lung.json'), JSON.stringify(heart));
    expect(() => readUseCaseFile(join(dir, 'lung.json'))).toThrow(`${join(dir, 'lung.json')}: invalid use case: name: must be the file's name 'lung', got 'heart'`);
    writeFileSync(join(dir, 'lung.json'), '{"name": ');
    expect(() => UseCaseCatalog.fromFolders([dir])).toThrow(`${join(dir, 'lung.json')}: invalid use case: file: not readable JSON`);
    const clash = tempDir('use-cases-');
    writeFileSync(join(clash, 'iris.json'), JSON.stringify(irisJson()));
    expect(() => UseCaseCatalog.fromFolders([builtInUseCasesDir(), clash])).toThrow(`use case 'iris' is defined twice`);
    expect(() => UseCaseCatalog.fromFolders([join(dir, 'nope')])).toThrow('does not exist or is not a folder');
  });

  it('adds stored definitions without shadowing a file', () => {
    const catalog = UseCaseCatalog.fromFolders([builtInUseCasesDir()]);
    catalog.addStored([{ ...IRIS, description: 'impostor' }, { ...IRIS, name: 'heart' }]);
    expect(catalog.get('iris').description).toBe(IRIS.description);
    expect(catalog.origin('heart')).toEqual({ kind: 'stored' });
    expect(catalog.stored().map((u) => u.name)).toEqual(['heart']);
    expect(() => catalog.get('lung')).toThrow("unknown use case 'lung' (known: breast_cancer, digits, iris, heart)");
  });

  it('answers any JSON with a definition or a validation error, never another error', () => {
    const base = irisJson();
    const mutated = fc.record({ key: fc.constantFrom(...Object.keys(base), 'extra'), value: fc.jsonValue() }).map(({ key, value }) => ({ ...base, [key]: value }));
    const nested = fc
      .record({ i: fc.nat(3), key: fc.constantFrom('name', 'type', 'values'), value: fc.jsonValue() })
      .map(({ i, key, value }) => ({ ...base, features: base.features.map((f: object, j: number) => (j === i ? { ...f, [key]: value } : f)) }));
    fc.assert(
      fc.property(fc.oneof(fc.jsonValue(), mutated, nested), (raw) => {
        try {
          const uc = parseUseCase(raw, 'fuzz.json');
          expect(uc.features.length).toBeGreaterThan(0);
        } catch (err) {
          expect(err).toBeInstanceOf(UseCaseValidationError);
          expect((err as UseCaseValidationError).problems.length).toBeGreaterThan(0);
        }
      }),
      { numRuns: 1000, seed: 4 },
    );
  });
});
