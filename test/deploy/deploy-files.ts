/**
 * Readers shared by the static deployment tests (deploy.spec.ts and
 * dockerfile.int-spec.ts): .env.example by section, the Dockerfile's
 * instructions and stages, .dockerignore matching, helm template scanning.
 * Nothing here runs docker or helm (neither is installed where these run).
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, posix, relative } from 'node:path';
import { parse, parseDocument } from 'yaml';

export const ROOT = join(__dirname, '..', '..');
export const read = (rel: string) => readFileSync(join(ROOT, rel), 'utf8');
export const exists = (rel: string) => existsSync(join(ROOT, rel));
export const CHART = 'charts/fl-components';

/** Every file under a folder of the repository, as repository-relative posix paths. */
export function walk(rel: string, skip: (rel: string) => boolean = () => false): string[] {
  const abs = join(ROOT, rel);
  if (!existsSync(abs)) return [];
  if (!statSync(abs).isDirectory()) return [rel];
  return readdirSync(abs).flatMap((name) => {
    const child = posix.join(rel, name);
    return skip(child) ? [] : walk(child, skip);
  });
}

export function parseYaml(text: string): any {
  // merge: compose's x- anchors are merged with `<<:` (YAML 1.1 merge keys, which compose supports)
  const doc = parseDocument(text, { merge: true, uniqueKeys: true });
  if (doc.errors.length) throw new Error(doc.errors.map((e) => e.message).join('\n'));
  return doc.toJS({ maxAliasCount: 1000 });
}
export const parseYamlFile = (rel: string) => parseYaml(read(rel));
export { parse };

// ---------------------------------------------------------------- .env.example

export interface EnvVar {
  name: string;
  section: string;
}

/**
 * The variables of .env.example with the section they are listed under
 * (`# ---- every app`, `# ---- gateway`, ...). Commented-out assignments
 * (`# COORDINATOR_ID=...`) count: they document a variable without a default.
 */
export function envExample(): EnvVar[] {
  const vars: EnvVar[] = [];
  let section = '';
  for (const line of read('.env.example').split('\n')) {
    const heading = /^#\s*-{5,}\s*(.+?)\s*$/.exec(line);
    if (heading) {
      section = heading[1].toLowerCase();
      continue;
    }
    const m = /^#?\s*([A-Z][A-Z0-9_]+)=/.exec(line);
    if (m && !vars.some((v) => v.name === m[1])) vars.push({ name: m[1], section });
  }
  return vars;
}

export type Role = 'gateway' | 'coordinator' | 'edge-worker' | 'cli';
export const ROLES: Role[] = ['gateway', 'coordinator', 'edge-worker', 'cli'];

/** Sections of .env.example that no deployed app reads. */
/** Sections of .env.example for what runs outside the deployment: the demo, the tests, an admin's own tools. */
export const NOT_DEPLOYED_SECTIONS = ['demo', 'tests', 'admin'];

/**
 * Variables of a shared section that a role does not read, as the comments of
 * .env.example say (edge workers: no database, no registry; only the
 * coordinator and the edge worker have a health port). These only relax the
 * check; a variable added to .env.example is required everywhere its section
 * says until it is listed here.
 */
export const NOT_READ_BY: Record<Role, string[]> = {
  gateway: ['HEALTH_PORT'],
  coordinator: [],
  'edge-worker': [
    'DATABASE_URL',
    'DB_POOL_SIZE',
    'REGISTRY_BACKEND',
    'ARTIFACT_DIR',
    'MLFLOW_TRACKING_URI',
    'MLFLOW_URL',
    'MLFLOW_TRACKING_USERNAME',
    'MLFLOW_TRACKING_PASSWORD',
    'MLFLOW_TRACKING_TOKEN',
    'MLFLOW_HTTP_REQUEST_TIMEOUT',
    'MLFLOW_HTTP_REQUEST_MAX_RETRIES',
    'EMBEDDED_PG_DIR',
  ],
  cli: ['HEALTH_PORT', 'SHUTDOWN_GRACE_S'],
};

/** Variables listed under one app's section but read by another too (said in a comment of .env.example). */
export const ALSO_READ_BY: Partial<Record<Role, string[]>> = {
  coordinator: ['NODE_ONLINE_WINDOW_S'],
  'edge-worker': ['HEALTH_PORT'],
};

/** Which roles must be given a variable, from the section it is listed under. */
export function rolesReading(v: EnvVar): Role[] {
  const s = v.section;
  let roles: Role[];
  if (/every app/.test(s)) roles = [...ROLES];
  else if (/gateway/.test(s)) roles = ['gateway'];
  else if (/coordinator/.test(s)) roles = ['coordinator'];
  else if (/edge.?worker/.test(s)) roles = ['edge-worker'];
  else if (/\bcli\b/.test(s)) roles = ['cli'];
  else roles = []; // a section these tests do not know: checked only globally
  for (const [role, names] of Object.entries(ALSO_READ_BY) as [Role, string[]][]) {
    if (names.includes(v.name) && !roles.includes(role)) roles.push(role);
  }
  return roles.filter((r) => !NOT_READ_BY[r].includes(v.name));
}

export const deployedVars = () => envExample().filter((v) => !NOT_DEPLOYED_SECTIONS.some((s) => v.section.includes(s)));

// ---------------------------------------------------------------- Dockerfile

export interface Instruction {
  keyword: string;
  args: string;
  line: number;
}
export interface Stage {
  name: string;
  base: string;
  instructions: Instruction[];
}

/** Instructions of a Dockerfile: comments dropped, `\` continuations joined. */
export function dockerInstructions(text: string): Instruction[] {
  const out: Instruction[] = [];
  let buf = '';
  let start = 0;
  text.split('\n').forEach((raw, i) => {
    const line = raw.trimEnd();
    if (!buf && (/^\s*#/.test(line) || !line.trim())) return;
    if (/^\s*#/.test(line)) return; // a comment inside a continuation
    if (!buf) start = i + 1;
    if (line.endsWith('\\')) {
      buf += line.slice(0, -1) + ' ';
      return;
    }
    buf += line;
    const m = /^\s*([A-Za-z]+)\s+([\s\S]*)$/.exec(buf);
    if (m) out.push({ keyword: m[1].toUpperCase(), args: m[2].trim(), line: start });
    buf = '';
  });
  return out;
}

export function dockerStages(text: string): { args: Record<string, string>; stages: Stage[] } {
  const args: Record<string, string> = {};
  const stages: Stage[] = [];
  for (const ins of dockerInstructions(text)) {
    if (ins.keyword === 'FROM') {
      const m = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args);
      if (!m) throw new Error(`line ${ins.line}: cannot read FROM ${ins.args}`);
      const base = m[1].replace(/\$\{?(\w+)\}?/g, (_, a) => args[a] ?? `$${a}`);
      stages.push({ name: m[2] ?? String(stages.length), base, instructions: [] });
    } else if (!stages.length && ins.keyword === 'ARG') {
      const [k, v] = ins.args.split('=');
      args[k] = v ?? '';
    } else if (stages.length) {
      stages[stages.length - 1].instructions.push(ins);
    }
  }
  return { args, stages };
}

/** A stage and the stages it is built FROM, base first. */
export function stageChain(stages: Stage[], name: string): Stage[] {
  const stage = stages.find((s) => s.name === name);
  if (!stage) throw new Error(`no stage ${name}`);
  const parent = stages.find((s) => s.name === stage.base);
  return parent ? [...stageChain(stages, parent.name), stage] : [stage];
}

export interface Copy {
  from?: string;
  sources: string[];
  dest: string;
  workdir: string;
  line: number;
}

/** Splits an exec-form (JSON array) or shell-form argument list. */
export function execArgs(args: string): string[] {
  const t = args.trim();
  if (t.startsWith('[')) return JSON.parse(t);
  return t.split(/\s+/);
}

/** COPY instructions of a stage chain, with the WORKDIR each ran in. */
export function copies(chain: Stage[]): Copy[] {
  let workdir = '/';
  const out: Copy[] = [];
  for (const s of chain) {
    for (const ins of s.instructions) {
      if (ins.keyword === 'WORKDIR') workdir = posix.resolve(workdir, ins.args);
      if (ins.keyword !== 'COPY' && ins.keyword !== 'ADD') continue;
      const words = execArgs(ins.args);
      const flags = words.filter((w) => w.startsWith('--'));
      const paths = words.filter((w) => !w.startsWith('--'));
      const from = flags.find((f) => f.startsWith('--from='))?.slice('--from='.length);
      out.push({ from, sources: paths.slice(0, -1), dest: posix.resolve(workdir, paths[paths.length - 1]), workdir, line: ins.line });
    }
  }
  return out;
}

export function workdirOf(chain: Stage[]): string {
  let workdir = '/';
  for (const s of chain) for (const ins of s.instructions) if (ins.keyword === 'WORKDIR') workdir = posix.resolve(workdir, ins.args);
  return workdir;
}

/** The last CMD / HEALTHCHECK / ENTRYPOINT / USER / EXPOSE of a stage chain. */
export function lastOf(chain: Stage[], keyword: string): Instruction | undefined {
  return chain.flatMap((s) => s.instructions).filter((i) => i.keyword === keyword).pop();
}

// ---------------------------------------------------------------- .dockerignore

/**
 * Docker's .dockerignore rules (moby/patternmatcher): patterns are cleaned
 * paths relative to the context; `*` and `?` stay within one path segment,
 * `**` spans any number of segments; a pattern that matches a directory
 * excludes what is under it; `!` re-includes; the last matching pattern wins.
 */
export function dockerignore(text: string): (path: string) => boolean {
  const rules = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const negate = l.startsWith('!');
      const pattern = posix.normalize(negate ? l.slice(1).trim() : l).replace(/^\/+/, '').replace(/\/+$/, '');
      let re = '';
      for (let i = 0; i < pattern.length; i++) {
        const c = pattern[i];
        if (c === '*' && pattern[i + 1] === '*') {
          i++;
          if (pattern[i + 1] === '/') {
            i++;
            re += '(?:.*/)?';
          } else re += '.*';
        } else if (c === '*') re += '[^/]*';
        else if (c === '?') re += '[^/]';
        else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
      }
      return { negate, re: new RegExp(`^${re}$`) };
    });
  return (path: string) => {
    const parts = posix.normalize(path).replace(/^\.\//, '').split('/');
    const prefixes = parts.map((_, i) => parts.slice(0, i + 1).join('/'));
    let excluded = false;
    for (const r of rules) if (prefixes.some((p) => r.re.test(p))) excluded = !r.negate;
    return excluded;
  };
}

// ---------------------------------------------------------------- helm templates

export const templateFiles = () => walk(`${CHART}/templates`).filter((f) => /\.(ya?ml|tpl|txt)$/.test(f));

export interface Action {
  text: string; // inside {{ }}, trim markers and comments removed
  offset: number;
}

/** The {{ }} actions of a template; throws on an unclosed or nested {{. */
export function templateActions(text: string, file = ''): Action[] {
  const out: Action[] = [];
  let i = 0;
  for (;;) {
    const open = text.indexOf('{{', i);
    const close = text.indexOf('}}', i);
    if (open < 0) {
      if (close >= 0) throw new Error(`${file}: '}}' without '{{' at ${lineAt(text, close)}`);
      return out;
    }
    if (close >= 0 && close < open) throw new Error(`${file}: '}}' without '{{' at ${lineAt(text, close)}`);
    const isComment = /^\{\{-?\s*\/\*/.test(text.slice(open, open + 6));
    const end = isComment ? text.indexOf('*/', open) : open;
    const closeAfter = text.indexOf('}}', end < 0 ? open : end);
    if (closeAfter < 0 || end < 0) throw new Error(`${file}: '{{' not closed, from ${lineAt(text, open)}`);
    const inner = text.slice(open + 2, closeAfter);
    if (!isComment && inner.includes('{{')) throw new Error(`${file}: '{{' inside an action at ${lineAt(text, open)}`);
    if (!isComment) out.push({ text: inner.replace(/^-\s*/, '').replace(/\s*-$/, '').trim(), offset: open });
    i = closeAfter + 2;
  }
}

export function lineAt(text: string, offset: number): string {
  return `line ${text.slice(0, offset).split('\n').length}`;
}

const BLOCK = /^(if|with|range|define|block)\b/;

export interface ValuesUse {
  path: string[];
  file: string;
  where: string;
  /** `.Values` (not `$.Values`, not `.root.Values`) used inside with/range, where `.` is no longer the root. */
  rebound: boolean;
}

/**
 * Every `.Values.a.b` used in the templates, plus uses of variables bound to
 * a values path (`$g := .Values.gateway` then `$g.port`; `$site :=
 * mergeOverwrite (deepCopy $.Values.edgeWorker.siteDefaults) ...` then
 * `$site.data.hostPath`), translated to values paths.
 */
export function valuesUses(): ValuesUse[] {
  const uses: ValuesUse[] = [];
  for (const file of templateFiles()) {
    const text = read(file);
    const actions = templateActions(text, file);
    const stack: string[] = [];
    const vars = new Map<string, string[]>();
    for (const a of actions) {
      const kw = BLOCK.exec(a.text)?.[1];
      const rebinding = stack.some((k) => k === 'with' || k === 'range');
      // in `range .Values.x` / `with .Values.x` the expression is evaluated before `.` is rebound
      for (const m of a.text.matchAll(/(\$\w*|\.\w+|\)|\s|^|\()(\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+))/g)) {
        const prefix = m[1];
        const rootRelative = !prefix.startsWith('$') && !/^\.\w+$/.test(prefix);
        uses.push({ path: m[3].slice(1).split('.'), file, where: lineAt(text, a.offset), rebound: rootRelative && rebinding });
      }
      const bind = /^\$(\w+)\s*:?=\s*(?:mergeOverwrite\s+\(deepCopy\s+)?\$?\.Values((?:\.[A-Za-z_]\w*)+)/.exec(a.text);
      if (bind) vars.set(bind[1], bind[2].slice(1).split('.'));
      for (const m of a.text.matchAll(/\$(\w+)((?:\.[A-Za-z_][A-Za-z0-9_]*)+)/g)) {
        const base = vars.get(m[1]);
        if (base) uses.push({ path: [...base, ...m[2].slice(1).split('.')], file, where: lineAt(text, a.offset), rebound: false });
      }
      if (kw) stack.push(kw);
      else if (/^end\b/.test(a.text)) {
        if (!stack.length) throw new Error(`${file}: {{ end }} without a block at ${lineAt(text, a.offset)}`);
        stack.pop();
      } else if (/^else\s+(if|with)\b/.test(a.text)) {
        // `else if` stays in the same block
      }
    }
    if (stack.length) throw new Error(`${file}: ${stack.length} block(s) not ended (${stack.join(', ')})`);
  }
  return uses;
}

/** Looks a path up in parsed values: 'ok', 'free' (below an empty map, a list or a scalar), or 'missing'. */
export function lookup(values: any, path: string[]): 'ok' | 'free' | 'missing' {
  let node = values;
  for (let i = 0; i < path.length; i++) {
    if (node === null || typeof node !== 'object' || Array.isArray(node)) return 'free';
    if (!(path[i] in node)) return Object.keys(node).length === 0 ? 'free' : 'missing';
    node = node[path[i]];
  }
  return 'ok';
}

export const relToRoot = (abs: string) => relative(ROOT, abs).split('\\').join('/');
