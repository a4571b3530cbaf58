import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { getMetadataStorage } from 'class-validator';
import { CliConfig } from '../../cli/src/config';
import { CoordinatorConfig } from '../../coordinator/src/config';
import { EdgeWorkerConfig } from '../../edge-worker/src/config';
import { GatewayConfig } from '../../gateway/src/config';

/** Every variable an app reads is documented in .env.example. */
describe('.env.example', () => {
  const text = readFileSync(join(__dirname, '..', '..', '..', '.env.example'), 'utf8');
  const documented = new Set([...text.matchAll(/^#?\s*([A-Z][A-Z0-9_]+)=/gm)].map((m) => m[1]));

  it.each([GatewayConfig, CoordinatorConfig, EdgeWorkerConfig, CliConfig].map((c) => [c.name, c] as const))('documents every variable of %s', (_, cls) => {
    const names = new Set(getMetadataStorage().getTargetValidationMetadatas(cls, '', true, false).map((m) => m.propertyName));
    expect(names.size).toBeGreaterThan(5);
    expect([...names].filter((n) => !documented.has(n))).toEqual([]);
  });

  it('documents the demo settings', () => {
    const demo = readFileSync(join(__dirname, 'main.ts'), 'utf8');
    const read = [...demo.matchAll(/env\.([A-Z][A-Z0-9_]+)/g)].map((m) => m[1]);
    expect(read.length).toBeGreaterThan(0);
    expect(read.filter((n) => !documented.has(n))).toEqual([]);
  });
});
