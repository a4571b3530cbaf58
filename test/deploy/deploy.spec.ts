/**
 * Static checks of docker/ and charts/ (no docker, no helm, no build needed).
 *
 * What they cannot check, and why: the images are not built and the chart is
 * not rendered (neither docker nor helm runs where these tests run). Helm
 * templates are not YAML, so they are scanned, not parsed: balanced `{{ }}`
 * and blocks, `.Values` paths against values.yaml, variables bound to values
 * paths (`$g := .Values.gateway`, `$site := mergeOverwrite (deepCopy
 * $.Values.edgeWorker.siteDefaults) ...`) followed. Not followed: `index
 * .Values "x"`, fields of the items of `range` over values (e.g. `.host` in
 * `range .Values.gateway.ingress.hosts`), contexts handed to named templates
 * other than the root. Below a values key whose default is an empty map, a
 * list or a scalar, any path is accepted (free-form Kubernetes fields such as
 * resources or nodeSelector).
 */
import { spawn } from 'node:child_process';
import { createServer, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { nodeFlagsOf } from '@fl/runtime';
import {
  CHART,
  dockerInstructions,
  dockerStages,
  deployedVars,
  envExample,
  exists,
  lastOf,
  lookup,
  parseYamlFile,
  read,
  Role,
  ROLES,
  rolesReading,
  ROOT,
  stageChain,
  templateActions,
  templateFiles,
  valuesUses,
  walk,
} from './deploy-files';

const yamlFiles = [...walk('docker'), ...walk(CHART)].filter((f) => /\.ya?ml$/.test(f) && !f.startsWith(`${CHART}/templates/`));

describe('.env.example as read by these tests', () => {
  it('has the sections and variables the deployment checks rely on', () => {
    const vars = envExample();
    const sections = new Set(vars.map((v) => v.section));
    for (const s of ['every app', 'gateway', 'coordinator', 'edge worker']) expect([...sections].some((x) => x.includes(s))).toBe(true);
    const names = vars.map((v) => v.name);
    for (const n of ['AMQP_URL', 'DATABASE_URL', 'PORT', 'COORDINATOR_ID', 'NODE_NAME', 'DATA_PATH', 'USE_CASES']) expect(names).toContain(n);
    expect(deployedVars().length).toBeGreaterThan(25);
    for (const v of deployedVars()) expect(rolesReading(v).length + (/every app|gateway|coordinator|edge|cli/.test(v.section) ? 0 : 1)).toBeGreaterThan(0);
  });
});

describe('YAML files', () => {
  it('finds them', () => {
    expect(yamlFiles).toEqual(expect.arrayContaining(['docker/compose.yaml', `${CHART}/Chart.yaml`, `${CHART}/values.yaml`, `${CHART}/dev-values.yaml`]));
  });
  it.each(yamlFiles)('%s parses', (file) => {
    expect(() => parseYamlFile(file)).not.toThrow();
    expect(parseYamlFile(file)).toEqual(expect.any(Object));
  });
});

// ---------------------------------------------------------------- compose

describe('docker/compose.yaml', () => {
  const compose = parseYamlFile('docker/compose.yaml');
  const services: Record<string, any> = compose.services;
  const dockerfileTargets = dockerStages(read('docker/Dockerfile')).stages.map((s) => s.name);

  /** The role of a service from the image target it is built from and its command. */
  const roleOf = (svc: any): Role | undefined => {
    const target = svc.build?.target;
    if (Array.isArray(svc.command) && svc.command.some((c: string) => c.includes('apps/cli/'))) return 'cli';
    return (['gateway', 'coordinator', 'edge-worker'] as Role[]).find((r) => r === target);
  };
  const byRole = (role: Role) => Object.entries(services).filter(([, s]) => roleOf(s) === role);
  const oneShot = (svc: any) => svc.restart === 'no';

  it('has the infrastructure: PostgreSQL 15, RabbitMQ with the management plugin, MLflow serving artifacts', () => {
    expect(services.postgres.image).toBe('postgres:15');
    expect(services.rabbitmq.image).toBe('rabbitmq:3-management');
    expect(services.mlflow.image).toMatch(/ghcr\.io\/mlflow\/mlflow/);
    const cmd: string[] = services.mlflow.command;
    expect(cmd.slice(0, 2)).toEqual(['mlflow', 'server']);
    for (const flag of ['--backend-store-uri', '--serve-artifacts', '--host']) expect(cmd).toContain(flag);
    expect(cmd[cmd.indexOf('--host') + 1]).toBe('0.0.0.0');
  });

  it('has the gateway on port 8000, two coordinators with distinct ids and three edge workers', () => {
    expect(byRole('gateway')).toHaveLength(1);
    expect(byRole('gateway')[0][1].ports).toContain('8000:8000');
    const coordinators = byRole('coordinator');
    expect(coordinators).toHaveLength(2);
    const ids = coordinators.map(([, s]) => s.environment.COORDINATOR_ID);
    expect(new Set(ids).size).toBe(2);
    expect(byRole('edge-worker')).toHaveLength(3);
  });

  it('builds every app service from a target of docker/Dockerfile, from the repository root', () => {
    for (const [name, s] of Object.entries(services).filter(([, s]) => s.build)) {
      expect([name, s.build.target && dockerfileTargets.includes(s.build.target)]).toEqual([name, true]);
      expect(join(ROOT, 'docker', s.build.context)).toBe(ROOT);
      expect(exists(s.build.dockerfile)).toBe(true);
    }
  });

  it('mounts a different data shard read-only into each edge worker, at DATA_PATH', () => {
    const mounts = byRole('edge-worker').map(([, s]) => {
      expect(s.volumes).toHaveLength(1);
      const [src, dest, mode] = String(s.volumes[0]).split(':');
      expect(mode).toBe('ro');
      expect(s.environment.DATA_PATH).toBe(dest);
      expect(exists(join('docker', src))).toBe(true);
      return src;
    });
    expect(new Set(mounts).size).toBe(3);
    const names = byRole('edge-worker').map(([, s]) => s.environment.NODE_NAME);
    expect(new Set(names).size).toBe(3);
  });

  it('has a health check on every long-running service, and waits on health (or completion) before starting dependants', () => {
    for (const [name, s] of Object.entries(services)) {
      if (oneShot(s)) continue;
      expect([name, Array.isArray(s.healthcheck?.test) && s.healthcheck.test.length > 1 && !s.healthcheck.disable]).toEqual([name, true]);
    }
    for (const [name, s] of Object.entries(services)) {
      for (const [dep, cond] of Object.entries<any>(s.depends_on ?? {})) {
        expect(Object.keys(services)).toContain(dep);
        const want = oneShot(services[dep]) ? 'service_completed_successfully' : 'service_healthy';
        expect([name, dep, cond.condition]).toEqual([name, dep, want]);
      }
    }
    for (const role of ['gateway', 'coordinator', 'cli'] as Role[]) {
      for (const [name, s] of byRole(role)) expect([name, Object.keys(s.depends_on)]).toEqual([name, expect.arrayContaining(['postgres'])]);
    }
    for (const role of ['gateway', 'coordinator', 'edge-worker'] as Role[]) {
      for (const [name, s] of byRole(role)) expect([name, Object.keys(s.depends_on)]).toEqual([name, expect.arrayContaining(['rabbitmq'])]);
    }
  });

  it('starts in an order: depends_on has no cycle', () => {
    const done = new Set<string>();
    let progress = true;
    while (progress) {
      progress = false;
      for (const [name, s] of Object.entries(services)) {
        if (!done.has(name) && Object.keys(s.depends_on ?? {}).every((d) => done.has(d))) {
          done.add(name);
          progress = true;
        }
      }
    }
    expect([...Object.keys(services)].filter((n) => !done.has(n))).toEqual([]);
  });

  it('checks app health with node against /health/live (the slim images have no curl)', () => {
    for (const role of ['gateway', 'coordinator', 'edge-worker'] as Role[]) {
      for (const [, s] of byRole(role)) expect(s.healthcheck.test).toEqual(['CMD', 'node', 'docker/healthcheck.js', role]);
    }
  });

  it('gives every variable of .env.example to each service that reads it', () => {
    const missing: string[] = [];
    for (const v of deployedVars()) {
      const roles = rolesReading(v);
      const somewhere = Object.values(services).some((s) => s.environment && v.name in s.environment);
      if (!somewhere) missing.push(`${v.name}: in no service`);
      for (const role of roles) {
        for (const [name, s] of byRole(role)) if (!(v.name in (s.environment ?? {}))) missing.push(`${v.name}: not in ${name} (${role})`);
      }
    }
    expect(missing).toEqual([]);
  });

  it('keeps database and registry settings away from the edge workers', () => {
    for (const [name, s] of byRole('edge-worker')) {
      for (const n of ['DATABASE_URL', 'MLFLOW_TRACKING_PASSWORD', 'MLFLOW_TRACKING_TOKEN']) expect([name, n in s.environment]).toEqual([name, false]);
    }
  });

  it('lets each app stop within SHUTDOWN_GRACE_S before docker kills it', () => {
    const seconds = (d: string) => Number(/^(\d+)s$/.exec(d)?.[1] ?? NaN);
    for (const role of ['gateway', 'coordinator', 'edge-worker'] as Role[]) {
      for (const [name, s] of byRole(role)) {
        expect([name, seconds(s.stop_grace_period) > Number(s.environment.SHUTDOWN_GRACE_S)]).toEqual([name, true]);
      }
    }
  });

  it('runs the apps with a read-only root file system, no capabilities, /tmp as tmpfs', () => {
    for (const role of ROLES) {
      for (const [name, s] of byRole(role)) {
        expect([name, s.read_only, s.cap_drop, s.tmpfs]).toEqual([name, true, ['ALL'], ['/tmp']]);
      }
    }
  });

  it('gives the coordinators a volume where AGGREGATION_SPILL_DIR points: /tmp is a tmpfs, memory, which spilling is meant to spare', () => {
    expect(byRole('coordinator')).toHaveLength(2);
    for (const [name, s] of byRole('coordinator')) {
      expect([name, s.environment.AGGREGATION_SPILL_DIR]).toEqual([name, '${AGGREGATION_SPILL_DIR:-/var/spill}']);
      expect([name, s.volumes]).toEqual([name, expect.arrayContaining(['spill:/var/spill'])]);
    }
    expect(Object.keys(compose.volumes)).toContain('spill');
  });

  it('commits no credentials: passwords come from ${...} with a dev-only default', () => {
    const text = read('docker/compose.yaml');
    const secretish = [...text.matchAll(/^\s*([A-Z_]*(?:PASSWORD|PASS|TOKEN)[A-Z_]*):\s*(.*)$/gm)];
    expect(secretish.length).toBeGreaterThan(3);
    for (const [, key, value] of secretish) expect([key, value]).toEqual([key, expect.stringMatching(/^\$\{[A-Z_]+:-[^}]*\}$/)]);
    for (const [, url] of text.matchAll(/(\w+:\/\/[^\s'"]*@[^\s'"]*)/g)) expect(url).toMatch(/:\/\/\w+:\$\{[A-Z_]+:-[^}]*\}@/);
  });
});

// ---------------------------------------------------------------- data shards

describe('docker/data shards', () => {
  const lines = (rel: string) => read(rel).split(/\r?\n/).filter((l) => l.trim() !== '');
  const [header, ...iris] = lines('libs/datasets/data/iris.csv');
  const shards = [1, 2, 3].map((i) => lines(`docker/data/site-${i}/iris.csv`));

  it('has the header of iris.csv and rows of every class in each shard', () => {
    for (const s of shards) {
      expect(s[0]).toBe(header);
      expect(s.length - 1).toBeGreaterThanOrEqual(45);
      expect(new Set(s.slice(1).map((r) => r.split(',').pop())).size).toBe(3);
    }
  });

  it('splits iris into disjoint shards that together hold every row once', () => {
    const all = shards.flatMap((s) => s.slice(1));
    expect(all.length).toBe(iris.length);
    expect([...all].sort()).toEqual([...iris].sort()); // as multisets: iris has duplicate rows
  });
});

// ---------------------------------------------------------------- Dockerfile (statically)

describe('docker/Dockerfile', () => {
  const text = read('docker/Dockerfile');
  const { stages } = dockerStages(text);
  const stage = (n: string) => stages.find((s) => s.name === n)!;
  const runs = (n: string) => stage(n).instructions.filter((i) => i.keyword === 'RUN').map((i) => i.args).join('\n');

  it('is multi-stage: build, prod-deps, runtime and one target per app', () => {
    expect(stages.map((s) => s.name)).toEqual(expect.arrayContaining(['build', 'prod-deps', 'runtime', 'gateway', 'coordinator', 'edge-worker']));
    expect(runs('build')).toMatch(/npm ci\b/);
    expect(runs('build')).toMatch(/npm run build/);
    expect(runs('prod-deps')).toMatch(/npm ci --omit=dev/);
  });

  it('installs g++ in the build stage before `npm run build`, which builds the native fold with it, and checks the result', () => {
    const ins = stage('build').instructions.filter((i) => i.keyword === 'RUN').map((i) => i.args);
    const gxx = ins.findIndex((a) => /apt-get install[^&]*\bg\+\+/.test(a));
    const build = ins.findIndex((a) => /npm run build/.test(a));
    expect([gxx >= 0, gxx < build]).toEqual([true, true]);
    expect(ins[build]).toMatch(/test -f dist\/native\/fold\.node/);
  });

  it('uses a Debian-based node 20 image (onnxruntime-node needs glibc)', () => {
    for (const s of stages.filter((s) => !stages.some((p) => p.name === s.base))) {
      expect(s.base).toMatch(/^node:20-(bookworm|bullseye)(-slim)?$/);
    }
  });

  it('copies .npmrc (ignore-scripts) before every npm ci', () => {
    for (const n of ['build', 'prod-deps']) {
      const ins = stage(n).instructions;
      const copyNpmrc = ins.findIndex((i) => i.keyword === 'COPY' && /\.npmrc/.test(i.args));
      const npmCi = ins.findIndex((i) => i.keyword === 'RUN' && /npm ci/.test(i.args));
      expect([n, copyNpmrc >= 0 && copyNpmrc < npmCi]).toEqual([n, true]);
    }
  });

  it.each(['gateway', 'coordinator', 'edge-worker'])('%s: non-root, production deps only, HEALTHCHECK with node on /health/live, EXPOSE, CMD', (target) => {
    const chain = stageChain(stages, target);
    const user = lastOf(chain, 'USER')?.args ?? 'root';
    expect(user).toMatch(/^[1-9]\d*(:[1-9]\d*)?$/); // numeric, so that Kubernetes' runAsNonRoot can verify it
    const fromStages = chain.flatMap((s) => s.instructions).filter((i) => i.keyword === 'COPY' && /--from=/.test(i.args));
    expect(fromStages.some((i) => /--from=prod-deps\s+\S*node_modules/.test(i.args))).toBe(true);
    expect(fromStages.some((i) => /--from=build\s+\S*node_modules/.test(i.args))).toBe(false);
    const hc = lastOf(chain, 'HEALTHCHECK')!.args;
    expect(hc).toMatch(/CMD \["node", "docker\/healthcheck\.js", "[a-z-]+"\]/);
    expect(read('docker/healthcheck.js')).toMatch(/\/health\/live/);
    expect(lastOf(chain, 'EXPOSE')?.args).toMatch(/^\d+$/);
    expect(JSON.parse(lastOf(chain, 'CMD')!.args)).toEqual(['node', ...nodeFlagsOf(target), `dist/apps/${target}/src/main.js`]);
  });

  it('starts the coordinator, edge worker and simulator with the service node flags wherever a script starts them; the gateway without', () => {
    const scripts = (JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts;
    for (const app of ['gateway', 'coordinator', 'edge-worker', 'simulator']) {
      expect([app, scripts[`start:${app}`]]).toEqual([app, ['node', ...nodeFlagsOf(app), `dist/apps/${app}/src/main.js`].join(' ')]);
    }
  });

  it('puts the CLI into the gateway and coordinator images, not into the edge worker', () => {
    const copiesCli = (t: string) => stageChain(stages, t).flatMap((s) => s.instructions).some((i) => i.keyword === 'COPY' && /dist\/apps\/cli/.test(i.args));
    expect([copiesCli('gateway'), copiesCli('coordinator'), copiesCli('edge-worker')]).toEqual([true, true, false]);
  });

  it('exposes the ports the apps listen on by default', () => {
    const env = Object.fromEntries(envExample().map((v) => [v.name, v]));
    expect(env.PORT).toBeDefined();
    expect(lastOf(stageChain(stages, 'gateway'), 'EXPOSE')!.args).toBe('8000');
    expect(lastOf(stageChain(stages, 'coordinator'), 'EXPOSE')!.args).toBe('8081');
  });

  it('reads back what it parsed (parser sanity)', () => {
    expect(dockerInstructions('FROM a AS b\n# c\nRUN x \\\n  # inside\n  y\n').map((i) => [i.keyword, i.args])).toEqual([
      ['FROM', 'a AS b'],
      ['RUN', 'x    y'],
    ]);
  });
});

// ---------------------------------------------------------------- healthcheck script

describe('docker/healthcheck.js', () => {
  let server: Server;
  let port: number;
  let status = 200;
  beforeAll(async () => {
    server = createServer((req, res) => {
      res.statusCode = req.url === '/health/live' ? status : 404;
      res.end('{}');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  const run = (args: string[], env: Record<string, string>) =>
    new Promise<number>((resolve) => {
      const child = spawn(process.execPath, [join(ROOT, 'docker/healthcheck.js'), ...args], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: 'ignore' });
      child.on('exit', (code) => resolve(code ?? -1));
    });

  it('passes on 2xx from PORT (gateway) and HEALTH_PORT (coordinator, edge worker)', async () => {
    status = 200;
    expect(await run(['gateway'], { PORT: String(port) })).toBe(0);
    expect(await run(['coordinator'], { HEALTH_PORT: String(port) })).toBe(0);
    expect(await run(['edge-worker'], { HEALTH_PORT: String(port) })).toBe(0);
  });
  it('fails on 503, on another path and when nothing listens', async () => {
    status = 503;
    expect(await run(['gateway'], { PORT: String(port) })).toBe(1);
    status = 200;
    expect(await run(['gateway', '/nope'], { PORT: String(port) })).toBe(1);
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const free = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    expect(await run(['coordinator'], { HEALTH_PORT: String(free) })).toBe(1);
  });
  it('passes when HEALTH_PORT=0 turns the health port off', async () => {
    expect(await run(['edge-worker'], { HEALTH_PORT: '0' })).toBe(0);
  });
});

// ---------------------------------------------------------------- chart

describe('charts/fl-components', () => {
  const chart = parseYamlFile(`${CHART}/Chart.yaml`);
  const values = parseYamlFile(`${CHART}/values.yaml`);
  const devValues = parseYamlFile(`${CHART}/dev-values.yaml`);
  const templates = templateFiles();
  const tpl = (f: string) => read(`${CHART}/templates/${f}`);
  const allTemplates = templates.map((f) => read(f)).join('\n');

  it('is a helm 3 application chart', () => {
    expect(chart).toMatchObject({ apiVersion: 'v2', name: 'fl-components', type: 'application' });
    expect(chart.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(chart.appVersion).toBeDefined();
  });

  it('has the templates the issue asks for', () => {
    const kinds = [...allTemplates.matchAll(/^kind: (\S+)/gm)].map((m) => m[1]);
    for (const k of ['Deployment', 'Service', 'Ingress', 'PodDisruptionBudget', 'ConfigMap', 'Secret', 'ServiceAccount', 'PersistentVolumeClaim']) expect(kinds).toContain(k);
    expect(tpl('coordinator.yaml')).toMatch(/^kind: \{\{ \$c\.kind \}\}/m); // StatefulSet or Deployment
    expect(values.coordinator.replicas).toBe(2);
    expect(values.coordinator.podDisruptionBudget.enabled).toBe(true);
  });

  it.each(templates)('%s: balanced {{ }} and blocks', (file) => {
    const text = read(file);
    const actions = templateActions(text, file);
    expect(actions.length).toBeGreaterThan(0);
    let depth = 0;
    for (const a of actions) {
      if (/^(if|with|range|define|block)\b/.test(a.text)) depth++;
      if (/^end\b/.test(a.text)) depth--;
      expect(depth).toBeGreaterThanOrEqual(0);
    }
    expect(depth).toBe(0);
  });

  it('scans templates correctly (scanner sanity)', () => {
    expect(() => templateActions('a {{ b }} c {{ d', 'x')).toThrow(/not closed/);
    expect(() => templateActions('a }} b', 'x')).toThrow(/without/);
    expect(templateActions('{{- /* {{ nested }} */ -}}{{- if .x -}}', 'x').map((a) => a.text)).toEqual(['if .x']);
    expect(lookup({ a: { b: 1, c: {} } }, ['a', 'b'])).toBe('ok');
    expect(lookup({ a: { b: 1, c: {} } }, ['a', 'c', 'anything'])).toBe('free');
    expect(lookup({ a: { b: 1, c: {} } }, ['a', 'd'])).toBe('missing');
  });

  it('mounts a spill emptyDir into the coordinators where AGGREGATION_SPILL_DIR points, larger than REASSEMBLY_MAX_BYTES (/tmp is small)', () => {
    const c = values.coordinator;
    expect(c.aggregationSpillDir).toBe('/var/spill');
    expect(tpl('coordinator.yaml')).toMatch(/- name: spill\n\s+mountPath: \/var\/spill\n/);
    expect(tpl('coordinator.yaml')).toMatch(/- name: spill\n\s+emptyDir:\n\s+sizeLimit: \{\{ \$c\.spillSizeLimit \}\}\n/);
    const gi = Number(/^(\d+)Gi$/.exec(c.spillSizeLimit)?.[1]);
    expect(gi * 1024 ** 3).toBeGreaterThan(c.reassemblyMaxBytes);
  });

  it('uses only .Values paths that values.yaml defines', () => {
    const uses = valuesUses();
    expect(uses.length).toBeGreaterThan(100);
    expect(uses.some((u) => u.path.join('.') === 'edgeWorker.siteDefaults.data.hostPath')).toBe(true); // followed through $site
    const missing = uses.filter((u) => lookup(values, u.path) === 'missing').map((u) => `${u.file} ${u.where}: .Values.${u.path.join('.')}`);
    expect(missing).toEqual([]);
  });

  it('never uses .Values inside with/range, where `.` is no longer the root ($.Values there)', () => {
    expect(valuesUses().filter((u) => u.rebound).map((u) => `${u.file} ${u.where}: .Values.${u.path.join('.')}`)).toEqual([]);
  });

  it('dev-values.yaml only sets keys that values.yaml has', () => {
    const unknown: string[] = [];
    const check = (dev: any, def: any, path: string) => {
      if (dev === null || typeof dev !== 'object') return;
      if (Array.isArray(dev)) {
        // items of a list: checked against the keys of the default's items, or the documented item defaults
        const itemDefaults = path === 'edgeWorker.sites' ? values.edgeWorker.siteDefaults : Array.isArray(def) && def.length ? Object.assign({}, ...def) : undefined;
        if (itemDefaults) dev.forEach((item, i) => check(item, itemDefaults, `${path}[${i}]`));
        return;
      }
      if (def === null || typeof def !== 'object' || Array.isArray(def) || Object.keys(def).length === 0) return; // free-form below here
      for (const k of Object.keys(dev)) {
        if (!(k in def)) unknown.push(`${path ? `${path}.` : ''}${k}`);
        else check(dev[k], def[k], path ? `${path}.${k}` : k);
      }
    };
    check(devValues, values, '');
    expect(unknown).toEqual([]);
    expect(devValues.edgeWorker.sites.length).toBeGreaterThan(0);
  });

  it('documents every field of values.yaml with a comment', () => {
    const lines = read(`${CHART}/values.yaml`).split('\n');
    const undocumented: string[] = [];
    const wholeDocumented: number[] = []; // indents of keys whose `# --` comment documents their whole value
    let previous = '';
    let commentStart = ''; // first line of the comment block right above the current line
    for (const line of lines) {
      if (!line.trim()) {
        previous = '';
        commentStart = '';
        continue;
      }
      if (line.trimStart().startsWith('#') && !previous.trimStart().startsWith('#')) commentStart = line.trimStart();
      const key = /^(\s*)([A-Za-z_][\w-]*):/.exec(line);
      if (key && !line.trimStart().startsWith('#')) {
        const indent = key[1].length;
        while (wholeDocumented.length && wholeDocumented[wholeDocumented.length - 1] >= indent) wholeDocumented.pop();
        const covered = wholeDocumented.length > 0;
        if (!covered && !previous.trimStart().startsWith('#')) undocumented.push(line.trim());
        if (previous.trimStart().startsWith('#') && commentStart.startsWith('# --')) wholeDocumented.push(indent);
      } else if (/^\s*-/.test(line) && !previous.trimStart().startsWith('#') && !wholeDocumented.length) {
        undocumented.push(line.trim());
      }
      previous = line;
    }
    expect(undocumented).toEqual([]);
  });

  it('commits no credentials: passwords and tokens empty, no URL with a password', () => {
    for (const [file, v] of [
      ['values.yaml', values],
      ['dev-values.yaml', devValues],
    ] as const) {
      const bad: string[] = [];
      const visit = (node: any, path: string) => {
        if (node && typeof node === 'object') {
          for (const [k, child] of Object.entries(node)) visit(child, `${path}.${k}`);
          return;
        }
        if (/\.(\w*password|token)$/i.test(path) && !(node === '' || node === null || /^<[^>]+>$/.test(String(node)))) bad.push(path);
        if (typeof node === 'string' && /:\/\/[^/\s@]+:[^/\s@]+@/.test(node)) bad.push(`${path} (credentials in a URL)`);
      };
      visit(v, file);
      expect(bad).toEqual([]);
    }
  });

  it('puts credentials only into the Secret: the ConfigMaps hold none, the pods take them by secretKeyRef', () => {
    const secretKeys = ['AMQP_URL', 'DATABASE_URL', 'MLFLOW_TRACKING_USERNAME', 'MLFLOW_TRACKING_PASSWORD', 'MLFLOW_TRACKING_TOKEN'];
    const configmap = tpl('configmap.yaml');
    for (const k of secretKeys) {
      expect([k, configmap.includes(k)]).toEqual([k, false]);
      expect([k, tpl('secret.yaml').includes(`${k}:`)]).toEqual([k, true]);
    }
    for (const m of allTemplates.matchAll(/- name: (AMQP_URL|DATABASE_URL|MLFLOW_TRACKING_\w+)\n(\s+)(\w+):/g)) expect([m[1], m[3]]).toEqual([m[1], 'valueFrom']);
    expect(tpl('secret.yaml')).toMatch(/if not \.Values\.existingSecret/);
    expect(values.existingSecret).toBe('');
  });

  /** Variables each workload template gives its container: ConfigMaps by envFrom, env entries, included helpers. */
  function workloadEnv(file: string): Set<string> {
    const text = tpl(file);
    const helpers = tpl('_helpers.tpl');
    const configmaps = configMapKeys();
    const names = new Set<string>();
    const addEnvNames = (t: string) => {
      for (const m of t.matchAll(/- name: ([A-Z][A-Z0-9_]+)\b/g)) names.add(m[1]);
    };
    addEnvNames(text);
    for (const m of text.matchAll(/include "([\w.]+)"/g)) {
      const body = new RegExp(`define "${m[1].replace(/\./g, '\\.')}"([\\s\\S]*?)\\{\\{-? end -?\\}\\}`).exec(helpers);
      if (body && /Env$/.test(m[1])) addEnvNames(body[1]);
    }
    for (const m of text.matchAll(/configMapRef:\s*\n\s*name: \{\{ include "fl\.fullname" [.$] \}\}-([\w-]+)/g)) {
      for (const k of configmaps.get(m[1]) ?? []) names.add(k);
    }
    return names;
  }

  /** ConfigMap name suffix -> data keys, from configmap.yaml. */
  function configMapKeys(): Map<string, string[]> {
    const out = new Map<string, string[]>();
    for (const doc of tpl('configmap.yaml').split(/^---$/m)) {
      const name = /name: \{\{ include "fl\.fullname" \. \}\}-([\w-]+)/.exec(doc)?.[1];
      const data = doc.split(/^data:$/m)[1];
      if (name && data) out.set(name, [...data.matchAll(/^\s+([A-Z][A-Z0-9_]+):/gm)].map((m) => m[1]));
    }
    return out;
  }

  it('builds one ConfigMap per audience', () => {
    expect([...configMapKeys().keys()].sort()).toEqual(['common', 'coordinator', 'edge-worker', 'gateway', 'server']);
  });

  it('gives every variable of .env.example to each workload that reads it', () => {
    const workloads: Record<Exclude<Role, 'cli'>, string> = { gateway: 'gateway-deployment.yaml', coordinator: 'coordinator.yaml', 'edge-worker': 'edge-workers.yaml' };
    const env = Object.fromEntries(Object.entries(workloads).map(([role, file]) => [role, workloadEnv(file)])) as Record<string, Set<string>>;
    // the CLI runs in the gateway and coordinator images, with their environment
    env.cli = new Set([...env.gateway, ...env.coordinator]);
    const missing: string[] = [];
    for (const v of deployedVars()) {
      if (!Object.values(env).some((s) => s.has(v.name))) missing.push(`${v.name}: in no workload`);
      for (const role of rolesReading(v)) if (!env[role].has(v.name)) missing.push(`${v.name}: not given to ${role}`);
    }
    expect(missing).toEqual([]);
    expect(env['edge-worker'].has('DATABASE_URL')).toBe(false);
  });

  it('probes /health/live and /health/ready, sets resources and security contexts on every workload', () => {
    for (const file of ['gateway-deployment.yaml', 'coordinator.yaml', 'edge-workers.yaml']) {
      const t = tpl(file);
      for (const s of ['livenessProbe:', 'readinessProbe:', 'path: /health/live', 'path: /health/ready', 'resources:', 'securityContext:', 'serviceAccountName:', 'mountPath: /tmp', 'terminationGracePeriodSeconds:']) {
        expect([file, s, t.includes(s)]).toEqual([file, s, true]);
      }
    }
    expect(values.podSecurityContext.runAsNonRoot).toBe(true);
    expect(values.containerSecurityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false });
  });

  it("mounts the broker's TLS files from rabbitmq.tlsSecret into every workload, the CA file defaulting to the mounted one", () => {
    expect(values.rabbitmq).toMatchObject({ tlsSecret: '', tlsMountPath: '/etc/fl/amqp-tls' });
    for (const file of ['gateway-deployment.yaml', 'coordinator.yaml', 'edge-workers.yaml']) {
      const t = tpl(file);
      expect([file, /include "fl\.amqpTlsMount" [.$]/.test(t), /include "fl\.amqpTlsVolume" [.$]/.test(t)]).toEqual([file, true, true]);
    }
    const helpers = tpl('_helpers.tpl');
    expect(helpers).toMatch(/define "fl\.amqpTlsVolume"[\s\S]*secretName: \{\{ \.Values\.rabbitmq\.tlsSecret \}\}/);
    expect(helpers).toMatch(/define "fl\.amqpTlsMount"[\s\S]*mountPath: \{\{ \.Values\.rabbitmq\.tlsMountPath \}\}\n\s+readOnly: true/);
    expect(tpl('configmap.yaml')).toMatch(/AMQP_TLS_CA_FILE: \{\{ \.Values\.rabbitmq\.tlsCaFile \| default \(ternary \(printf "%s\/ca\.crt" \.Values\.rabbitmq\.tlsMountPath\)/);
  });

  it('runs the same entry points as the images (node flags included)', () => {
    const { stages } = dockerStages(read('docker/Dockerfile'));
    for (const [file, target] of [
      ['gateway-deployment.yaml', 'gateway'],
      ['coordinator.yaml', 'coordinator'],
      ['edge-workers.yaml', 'edge-worker'],
    ]) {
      const command = /command: (\[.*\])/.exec(tpl(file))![1];
      expect(JSON.parse(command)).toEqual(JSON.parse(lastOf(stageChain(stages, target), 'CMD')!.args));
    }
  });

  it('refuses to render without a database or broker instead of falling back to an embedded one', () => {
    const helpers = tpl('_helpers.tpl');
    expect(helpers).toMatch(/fail "rabbitmq\.host is required/);
    expect(helpers).toMatch(/fail "postgresql\.host is required/);
    expect(tpl('configmap.yaml')).toMatch(/include "fl\.validate"/);
    expect(allTemplates).not.toMatch(/sqlite:|pglite/i);
  });
});
