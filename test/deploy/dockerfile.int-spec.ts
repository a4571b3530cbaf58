/**
 * The Dockerfile against the built tree (run `npm run build` first; the e2e
 * config runs this): what it COPYs exists and is not left out by
 * .dockerignore, what each image runs (CMD, HEALTHCHECK, the compose and
 * chart commands) is in that image, and what the copied code requires is a
 * production dependency. No image is built: docker does not run here.
 */
import { builtinModules } from 'node:module';
import { posix } from 'node:path';
import {
  CHART,
  copies,
  Copy,
  dockerignore,
  dockerStages,
  execArgs,
  exists,
  lastOf,
  parseYamlFile,
  read,
  stageChain,
  walk,
  workdirOf,
} from './deploy-files';

const { stages } = dockerStages(read('docker/Dockerfile'));
const TARGETS = ['gateway', 'coordinator', 'edge-worker'];
const ignored = dockerignore(read('.dockerignore'));

/** Where a COPY source lives in this repository: the context, or (--from=stage) the stage's WORKDIR mapped onto the repository root. */
function repoPath(copy: Copy, source: string): string {
  if (!copy.from) return posix.normalize(source).replace(/\/$/, '');
  const from = stages.find((s) => s.name === copy.from);
  if (!from) throw new Error(`COPY --from=${copy.from}: no such stage`);
  const workdir = workdirOf(stageChain(stages, from.name));
  const abs = posix.resolve(workdir, source);
  if (!abs.startsWith(`${workdir}/`)) throw new Error(`COPY --from=${copy.from} ${source}: outside the stage's WORKDIR ${workdir}`);
  return abs.slice(workdir.length + 1);
}

/** A path inside a target's image, mapped back to the repository file it was copied from (undefined: not copied). */
function imageFile(target: string, pathInImage: string): string | undefined {
  const chain = stageChain(stages, target);
  const abs = posix.resolve(workdirOf(chain), pathInImage);
  for (const c of copies(chain).reverse()) {
    for (const src of c.sources) {
      if (abs === c.dest || abs.startsWith(`${c.dest}/`)) {
        const rest = abs.slice(c.dest.length).replace(/^\//, '');
        // COPY dir/ dest copies the folder's contents into dest; COPY file dest/ puts the file into dest
        const candidate = posix.join(repoPath(c, src), rest);
        if (exists(candidate)) return candidate;
      }
    }
  }
  return undefined;
}

describe('the build output the Dockerfile copies (after npm run build)', () => {
  it.each(['gateway', 'coordinator', 'edge-worker', 'cli'])('dist/apps/%s/src/main.js exists', (app) => {
    expect(exists(`dist/apps/${app}/src/main.js`)).toBe(true);
  });
  it('has the native fold (libs/aggregation/native), and the coordinator image holds it where native-fold.ts looks (dist/native/)', () => {
    expect(exists('dist/native/fold.node')).toBe(true);
    expect(imageFile('coordinator', 'dist/native/fold.node')).toBe('dist/native/fold.node');
  });
  it('has the compiled migrations the apps run at start-up', () => {
    expect(walk('dist/libs/persistence/src/migrations').filter((f) => f.endsWith('.js')).length).toBeGreaterThan(0);
  });
});

describe('docker/Dockerfile COPY sources', () => {
  const allCopies = stages.flatMap((s) => copies([s]).map((c) => ({ ...c, stage: s.name })));

  it('copies something from the context, from the build stage and from prod-deps', () => {
    expect(allCopies.some((c) => !c.from)).toBe(true);
    expect(allCopies.some((c) => c.from === 'build')).toBe(true);
    expect(allCopies.some((c) => c.from === 'prod-deps')).toBe(true);
  });

  it('finds every source in the context (the repository root)', () => {
    const missing = allCopies.filter((c) => !c.from).flatMap((c) => c.sources.filter((s) => !exists(s)).map((s) => `line ${c.line}: ${s}`));
    expect(missing).toEqual([]);
  });

  it('finds every source copied from another stage in what that stage produces here (dist/, node_modules/)', () => {
    const missing = allCopies.filter((c) => c.from).flatMap((c) => c.sources.filter((s) => !exists(repoPath(c, s))).map((s) => `line ${c.line}: --from=${c.from} ${s}`));
    expect(missing).toEqual([]);
  });

  it('copies from the build stage only what `npm run build` writes (dist/)', () => {
    for (const c of allCopies.filter((c) => c.from === 'build')) for (const s of c.sources) expect(repoPath(c, s)).toMatch(/^dist\//);
  });

  it('is not undone by .dockerignore: no source, nor any file under one, is excluded', () => {
    const excluded: string[] = [];
    for (const c of allCopies.filter((c) => !c.from)) {
      for (const s of c.sources) {
        const files = walk(posix.normalize(s).replace(/\/$/, ''), (f) => f.endsWith('/node_modules'));
        for (const f of files) if (ignored(f)) excluded.push(`line ${c.line}: ${f}`);
        if (ignored(s)) excluded.push(`line ${c.line}: ${s}`);
      }
    }
    expect(excluded).toEqual([]);
  });

  it('.dockerignore keeps local state out of the context', () => {
    for (const p of ['node_modules/jest/package.json', 'dist/apps/gateway/src/main.js', '.env', '.git/HEAD', '.data/x', 'test/federated-iris.e2e-spec.ts', 'libs/x/node_modules/y']) {
      expect([p, ignored(p)]).toEqual([p, true]);
    }
  });
});

describe('.dockerignore matching (as docker does it)', () => {
  const m = dockerignore('*\n!apps\n!.npmrc\n**/secret.txt\n!keep/**\nlogs/*.log\n');
  it.each([
    ['README.md', true],
    ['apps/gateway/src/main.ts', false],
    ['apps/a/secret.txt', true],
    ['keep/secret.txt', false],
    ['logs/a.log', true],
    ['apps', false],
    ['.npmrc', false],
    ['.env', true],
  ])('%s excluded: %s', (path, want) => {
    expect(m(path)).toBe(want);
  });
});

describe.each(TARGETS)('the %s image', (target) => {
  const chain = stageChain(stages, target);

  it('has the script of its CMD and HEALTHCHECK', () => {
    const scripts = ['CMD', 'HEALTHCHECK', 'ENTRYPOINT']
      .map((k) => lastOf(chain, k))
      .filter(Boolean)
      .flatMap((i) => execArgs(i!.args.replace(/^.*?\bCMD\s+/, '')))
      .filter((a) => /\.m?js$/.test(a));
    expect(scripts.length).toBeGreaterThanOrEqual(2);
    expect(scripts.filter((s) => !imageFile(target, s))).toEqual([]);
  });

  it('has the entry points the compose services and the chart run on it', () => {
    const compose = parseYamlFile('docker/compose.yaml');
    const commands: string[][] = Object.values<any>(compose.services)
      .filter((s) => s.build?.target === target)
      .flatMap((s) => [s.command, s.healthcheck?.test?.slice(1)].filter(Array.isArray));
    const chartFile = { gateway: 'gateway-deployment.yaml', coordinator: 'coordinator.yaml', 'edge-worker': 'edge-workers.yaml' }[target]!;
    commands.push(JSON.parse(/command: (\[.*\])/.exec(read(`${CHART}/templates/${chartFile}`))![1]));
    const scripts = commands.flat().filter((a) => /\.m?js$/.test(a));
    expect(scripts.length).toBeGreaterThan(0);
    expect(scripts.filter((s) => !imageFile(target, s))).toEqual([]);
  });

  it('has the bundled data the apps read (libs/datasets/data, found from dist/)', () => {
    expect(imageFile(target, 'libs/datasets/data/iris.csv')).toBe('libs/datasets/data/iris.csv');
    expect(imageFile(target, 'dist/libs/datasets/src/paths.js')).toBeDefined();
  });

  it('needs only production dependencies: every package its code requires is in "dependencies"', () => {
    const pkg = JSON.parse(read('package.json'));
    const prod = new Set(Object.keys(pkg.dependencies));
    const builtins = new Set([...builtinModules, ...builtinModules.map((b) => `node:${b}`)]);
    const distDirs = copies(chain)
      .filter((c) => c.from === 'build')
      .flatMap((c) => c.sources.map((s) => repoPath(c, s)));
    const files = distDirs.flatMap((d) => walk(d)).filter((f) => f.endsWith('.js'));
    expect(files.length).toBeGreaterThan(20);
    const missing = new Set<string>();
    for (const f of files) {
      for (const [, spec] of read(f).matchAll(/require\("([^".][^"]*)"\)/g)) {
        if (builtins.has(spec)) continue;
        const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0];
        if (!prod.has(name)) missing.add(`${name} (${f})`);
      }
    }
    expect([...missing]).toEqual([]);
  });
});
