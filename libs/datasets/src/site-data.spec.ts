import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatCsv, parseCsv, readCsvFile } from './csv';
import { toLabeledData, UseCaseDataError } from './labeled-data';
import { bundledDataDir } from './paths';
import { loadSiteData, readSiteTables, splitForUseCase } from './site-data';
import { builtInUseCasesDir, IRIS, UseCaseCatalog } from './use-case-catalog';
import { parseUseCase } from './use-case-schema';
import { tempDirs } from '../test/temp-dirs';

const IRIS_HEADER = 'sepal-length,sepal-width,petal-length,petal-width,class';

const tempDir = tempDirs();

function site(files: Record<string, string>): string {
  const dir = tempDir('site-');
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

const irisRows = (n: number) => {
  const t = readCsvFile(join(bundledDataDir(), 'iris.csv'));
  return formatCsv(t.header, t.rows.filter((_, i) => i % 3 === 0).slice(0, n));
};

describe('a site whose data does not fit a use case', () => {
  it('refuses the use case with the reason and serves the others', () => {
    const dir = site({
      'a-iris.csv': irisRows(30),
      'b-digits.csv': formatCsv(readCsvFile(join(bundledDataDir(), 'digits.csv')).header, [
        [...new Array(64).fill('0'), '3'],
        [...new Array(63).fill('0'), 'dark', '4'],
      ]),
    });
    const s = loadSiteData(dir, ['iris', 'digits', 'breast_cancer'], 1);
    expect([...s.keys()]).toEqual(['iris']);
    expect(s.get('iris')!.train.n + s.get('iris')!.test.n).toBe(30);
    expect(Object.fromEntries(s.rejected)).toEqual({
      digits: `${join(dir, 'b-digits.csv')}:3: column 'px63' is not a number: 'dark'`,
      breast_cancer: expect.stringMatching(/^no file has the columns of use case 'breast_cancer': .* lacks mean_radius, mean_texture, mean_perimeter, mean_area, mean_smoothness, \.\.\. \(31 in all\)$/),
    });
  });

  it('refuses an unknown label, a missing column and a missing value under the reject policy', () => {
    const unknown = site({ 'x.csv': `${IRIS_HEADER}\n5.1,3.5,1.4,0.2,Iris-setosa\n5.0,3.0,1.0,0.2,Iris-nova\n` });
    expect(loadSiteData(unknown, ['iris'], 1).rejected.get('iris')).toBe(
      `${join(unknown, 'x.csv')}:3: unknown class 'Iris-nova' (expected one of Iris-setosa, Iris-versicolor, Iris-virginica)`,
    );
    const noColumn = site({ 'x.csv': 'sepal-length,sepal-width,petal-length,class\n5.1,3.5,1.4,Iris-setosa\n' });
    expect(loadSiteData(noColumn, ['iris'], 1).rejected.get('iris')).toBe(`no file has the columns of use case 'iris': ${join(noColumn, 'x.csv')} lacks petal-width`);
    const gap = site({ 'x.csv': `${IRIS_HEADER}\n5.1,3.5,1.4,0.2,Iris-setosa\n5.1,NA,1.4,0.2,Iris-setosa\n` });
    const s = loadSiteData(gap, ['iris'], 1);
    expect(s.size).toBe(0);
    expect(s.rejected.get('iris')).toBe(`${join(gap, 'x.csv')}:3: column 'sepal-width' has a missing value ('NA')`);
    // without USE_CASES a fitting file with a bad cell is refused too, not trained on
    expect(loadSiteData(unknown, undefined, 1).rejected.get('iris')).toContain("unknown class 'Iris-nova'");
  });

  it('applies drop_row, mean and constant imputation', () => {
    const header = 'age,sex,outcome';
    const text = `${header}\n10,f,yes\n,m,no\n30,?,no\n50,m,\n`;
    const def = (missing: object) =>
      parseUseCase(
        {
          name: 'clinic',
          description: 'test table',
          features: [
            { name: 'age', type: 'number' },
            { name: 'sex', type: 'categorical', values: ['f', 'm'] },
          ],
          label: { column: 'outcome', classes: ['no', 'yes'] },
          missing_values: missing,
          normalization: { method: 'standardize', mean: [40], std: [10] },
          model: { hidden: [], defaults: { learning_rate: 0.1, batch_size: 2, local_epochs: 1 } },
        },
        'clinic.json',
      );
    const drop = toLabeledData(parseCsv(text), def({ strategy: 'drop_row' }));
    expect(drop.n).toBe(1);
    expect(Array.from(drop.x)).toEqual([10, 1, 0]);
    expect(Array.from(drop.labels)).toEqual([1]);
    const onlyNumbers = `${header}\n10,f,yes\n,m,no\n30,f,no\n`;
    const mean = toLabeledData(parseCsv(onlyNumbers), def({ strategy: 'mean' }));
    expect(Array.from(mean.x)).toEqual([10, 1, 0, 20, 0, 1, 30, 1, 0]);
    const constant = toLabeledData(parseCsv(onlyNumbers), def({ strategy: 'constant', value: -1 }));
    expect(Array.from(constant.x.subarray(3, 6))).toEqual([-1, 0, 1]);
    // a categorical cell cannot be imputed
    expect(() => toLabeledData(parseCsv(text), def({ strategy: 'mean' }), 'c.csv')).toThrow(new UseCaseDataError("c.csv:4: column 'sex' has a missing value ('?') that cannot be imputed"));
    expect(() => toLabeledData(parseCsv(`${header}\n10,x,no\n`), def({ strategy: 'mean' }), 'c.csv')).toThrow("c.csv:2: column 'sex' has an unknown value 'x' (expected one of f, m)");
  });

  it('serves a use case of USE_CASES_DIR and refuses one it does not know', () => {
    const defs = tempDir('use-cases-');
    writeFileSync(join(defs, 'flowers.json'), JSON.stringify({ ...IRIS, name: 'flowers', missing_values: { strategy: 'drop_row' } }));
    const catalog = UseCaseCatalog.fromFolders([builtInUseCasesDir(), defs]);
    const dir = site({ 'x.csv': `${IRIS_HEADER}\n5.1,3.5,1.4,0.2,Iris-setosa\n5.1,,1.4,0.2,Iris-setosa\n6.1,3.0,4.6,1.4,Iris-versicolor\n` });
    const s = loadSiteData(dir, ['flowers', 'iris', 'heart'], 1, catalog);
    expect([...s.keys()]).toEqual(['flowers']);
    expect(s.get('flowers')!.train.n + s.get('flowers')!.test.n).toBe(2);
    expect([...s.rejected.keys()]).toEqual(['heart', 'iris']);
    expect(s.rejected.get('heart')).toContain('one stored at the gateway (POST /use-cases) reaches the site from a coordinator');
  });

  it('starts serving nothing when no file fits a known use case yet, and checks a use case learned later as at start-up', () => {
    const header = 'sl,sw,pl,pw,kind';
    const dir = site({ 'x.csv': `${header}\n5.1,3.5,1.4,0.2,setosa\n6.1,3.0,4.6,1.4,versicolor\n6.3,3.3,6.0,2.5,virginica\n5.0,3.0,1.0,0.2,nova\n` });
    const s = loadSiteData(dir, undefined, 1);
    expect(s.size).toBe(0);
    expect(s.rejected.size).toBe(0);
    const renamed = parseUseCase(
      { ...IRIS, name: 'renamed', features: IRIS.features.map((f, i) => ({ ...f, name: header.split(',')[i] })), label: { column: 'kind', classes: ['setosa', 'versicolor', 'virginica'] } },
      'renamed',
    );
    const tables = readSiteTables(dir);
    expect(splitForUseCase(tables, renamed, 1, false)).toEqual({ rejected: `${join(dir, 'x.csv')}:5: unknown class 'nova' (expected one of setosa, versicolor, virginica)` });
    const fits = splitForUseCase([{ file: 'y.csv', table: { ...tables[0].table, rows: tables[0].table.rows.slice(0, 3) } }], renamed, 1, false);
    expect(fits && 'split' in fits && fits.split.train.n + fits.split.test.n).toBe(3);
    expect(splitForUseCase(tables, IRIS, 1, false)).toBeUndefined();
    expect(splitForUseCase(tables, IRIS, 1, true)).toEqual({ rejected: `no file has the columns of use case 'iris': ${join(dir, 'x.csv')} lacks sepal-length, sepal-width, petal-length, petal-width, class` });
  });
});
