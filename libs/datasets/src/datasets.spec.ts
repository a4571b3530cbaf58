import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { bundledDataDir } from './paths';
import { formatCsv, parseCsv, readCsvFile } from './csv';
import { IRIS } from './use-case-catalog';
import { splitTrainTest, toLabeledData } from './labeled-data';
import { partitionTable } from './partition';
import { loadSiteData } from './site-data';
import { tempDirs } from '../test/temp-dirs';

const tempDir = tempDirs();

describe('datasets', () => {
  const irisPath = join(bundledDataDir(), 'iris.csv');

  it('reads the predecessor iris file: 150 rows, 50 per class', () => {
    const data = toLabeledData(readCsvFile(irisPath), IRIS);
    expect(data.n).toBe(150);
    expect(data.features).toBe(4);
    const counts = [0, 0, 0];
    data.labels.forEach((l) => counts[l]++);
    expect(counts).toEqual([50, 50, 50]);
    expect(Array.from(data.x.subarray(0, 4))).toEqual([5.1, 3.5, 1.4, 0.2].map(Math.fround));
  });

  it('names the line and column of a bad value', () => {
    const t = parseCsv('sepal-length,sepal-width,petal-length,petal-width,class\n5.1,x,1.4,0.2,Iris-setosa\n', 'f.csv');
    expect(() => toLabeledData(t, IRIS, 'f.csv')).toThrow("f.csv:2: column 'sepal-width' is not a number: 'x'");
    const u = parseCsv('sepal-length,sepal-width,petal-length,petal-width,class\n5.1,3,1.4,0.2,Iris-foo\n');
    expect(() => toLabeledData(u, IRIS)).toThrow("unknown class 'Iris-foo'");
  });

  it('splits deterministically, stratified, disjoint and complete', () => {
    const data = toLabeledData(readCsvFile(irisPath), IRIS);
    const a = splitTrainTest(data, 0.2, 7);
    const b = splitTrainTest(data, 0.2, 7);
    expect(a.test.n).toBe(30);
    expect(a.train.n).toBe(120);
    expect(Array.from(a.test.x)).toEqual(Array.from(b.test.x));
    const testClasses = [0, 0, 0];
    a.test.labels.forEach((l) => testClasses[l]++);
    expect(testClasses).toEqual([10, 10, 10]);
    const c = splitTrainTest(data, 0.2, 8);
    expect(Array.from(c.test.x)).not.toEqual(Array.from(a.test.x));
  });

  it('partitions into disjoint shards covering every row', () => {
    const table = readCsvFile(irisPath);
    const shards = partitionTable(table, 3, 1);
    expect(shards.map((s) => s.rows.length)).toEqual([50, 50, 50]);
    const lines = shards.flatMap((s) => s.lines);
    expect(new Set(lines).size).toBe(150);
    expect(() => partitionTable(table, 0, 1)).toThrow('cannot split 150 rows into 0 parts');
  });

  it('infers the use case of a site from its files', () => {
    const dir = tempDir('site-');
    const shard = partitionTable(readCsvFile(irisPath), 3, 1)[0];
    writeFileSync(join(dir, 'a.csv'), formatCsv(shard.header, shard.rows));
    const site = loadSiteData(dir, undefined, 1);
    expect([...site.keys()]).toEqual(['iris']);
    const s = site.get('iris')!;
    expect(s.train.n + s.test.n).toBe(50);
    expect(site.rejected.size).toBe(0);
    expect(() => loadSiteData(join(dir, 'nope'), undefined, 1)).toThrow('does not exist');
    const asked = loadSiteData(dir, ['digits', 'heart'], 1);
    expect(asked.size).toBe(0);
    expect(asked.rejected.get('digits')).toMatch(/^no file has the columns of use case 'digits': .*a\.csv lacks px0, px1, px2, px3, px4, \.\.\. \(65 in all\)$/);
    expect(asked.rejected.get('heart')).toMatch(/^unknown use case at this site \(known: breast_cancer, digits, iris\)/);
  });
});
