import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ModuleKind, ScriptTarget, transpileModule } from 'typescript';

/** A process running a benchmark body under withCleanup, told to stop while the body runs. */
describe('withCleanup', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fl-cleanup-'));
  // The module as the compiled bench has it, for a plain node process.
  const compiled = join(dir, 'cleanup.js');
  writeFileSync(compiled, transpileModule(readFileSync(join(__dirname, 'cleanup.ts'), 'utf8'), { compilerOptions: { module: ModuleKind.CommonJS, target: ScriptTarget.ES2022 } }).outputText);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.each([['SIGTERM', 143], ['SIGINT', 130]] as const)('runs the cleanup steps, newest first, when the process gets %s, then exits with %i', async (signal, code) => {
    const out = join(dir, `${signal}.txt`);
    const script = `
      const { appendFileSync } = require('node:fs');
      const { withCleanup } = require(${JSON.stringify(compiled)});
      withCleanup(async (cleanup) => {
        cleanup.add('first', () => appendFileSync(${JSON.stringify(out)}, 'first\\n'));
        cleanup.add('second', async () => appendFileSync(${JSON.stringify(out)}, 'second\\n'));
        console.log('ready');
        await new Promise(() => setInterval(() => undefined, 1000)); // a benchmark that would run on
      });`;
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    // The body has registered its steps once it says so.
    await new Promise<void>((ready, fail) => {
      child.stdout.on('data', (d: Buffer) => d.toString().includes('ready') && ready());
      child.on('exit', (c) => fail(new Error(`exited with ${c} before it was ready`)));
    });
    const exited = new Promise<number | null>((done) => child.on('exit', (c) => done(c)));
    child.kill(signal);
    expect(await exited).toBe(code);
    expect(readFileSync(out, 'utf8')).toBe('second\nfirst\n');
  });
});
