#!/usr/bin/env node
/**
 * Writes docker/data/site-{1,2,3}/iris.csv: three disjoint shards of
 * libs/datasets/data/iris.csv for the compose stack's three edge workers.
 * Within class c, its row i goes to site ((i + c) mod 3) + 1, so every site
 * gets about a third of each class (50 rows) and together they hold every row
 * exactly once. Deterministic: run it again and nothing changes.
 *
 *   node docker/data/make-shards.js
 */
const { mkdirSync, readFileSync, writeFileSync } = require('node:fs');
const { join } = require('node:path');

const SITES = 3;
const root = join(__dirname, '..', '..');
const [header, ...rows] = readFileSync(join(root, 'libs', 'datasets', 'data', 'iris.csv'), 'utf8')
  .split(/\r?\n/)
  .filter((line) => line.trim() !== '');
const shards = Array.from({ length: SITES }, () => []);
const seen = new Map(); // class -> [class number, rows of that class seen so far]
for (const row of rows) {
  const label = row.slice(row.lastIndexOf(',') + 1);
  const entry = seen.get(label) ?? [seen.size, 0];
  seen.set(label, [entry[0], entry[1] + 1]);
  // the class number rotates the start, so the remainders even out (50 rows each for iris)
  shards[(entry[1] + entry[0]) % SITES].push(row);
}
shards.forEach((shard, s) => {
  const dir = join(__dirname, `site-${s + 1}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'iris.csv'), [header, ...shard].join('\n') + '\n');
  console.log(`site-${s + 1}/iris.csv: ${shard.length} rows`);
});
