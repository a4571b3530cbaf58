import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { getMetadataStorage } from 'class-validator';
import { loadConfig } from '@fl/runtime';
import { SimulatorConfig } from './config';

describe('SimulatorConfig', () => {
  it('documents every variable in .env.example', () => {
    const text = readFileSync(join(__dirname, '..', '..', '..', '.env.example'), 'utf8');
    const documented = new Set([...text.matchAll(/^#?\s*([A-Z][A-Z0-9_]+)=/gm)].map((m) => m[1]));
    const names = new Set(getMetadataStorage().getTargetValidationMetadatas(SimulatorConfig, '', true, false).map((m) => m.propertyName));
    expect([...names].filter((n) => !documented.has(n))).toEqual([]);
  });

  it('reads the dealing and hostile settings, and names a bad one', () => {
    const c = loadConfig(SimulatorConfig, { SIMULATED_WORKERS: '1000', SIM_PARTITION: 'dirichlet:0.3', SIM_HOSTILE: 'sim-3:sign-flip,sim-7:scale:-2.5' });
    expect(c).toMatchObject({ SIMULATED_WORKERS: 1000, SIM_PARTITION: 'dirichlet:0.3', SIM_COMPUTE: 'onnx', SIM_NODE_PREFIX: 'sim' });
    expect(() => loadConfig(SimulatorConfig, { SIM_PARTITION: 'shuffled' })).toThrow(/SIM_PARTITION must be iid, copy/);
    expect(() => loadConfig(SimulatorConfig, { SIM_HOSTILE: 'sim-3' })).toThrow(/SIM_HOSTILE must be/);
    expect(() => loadConfig(SimulatorConfig, { SIMULATED_WORKERS: '0' })).toThrow(/SIMULATED_WORKERS/);
  });
});
