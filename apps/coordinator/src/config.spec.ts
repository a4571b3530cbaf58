import { loadConfig } from '@fl/runtime';
import { coordinatorBusOptions, CoordinatorConfig } from './config';

describe('the coordinator bus settings', () => {
  it('hold one large update in memory, and take in others up to REASSEMBLY_MAX_BYTES in files in AGGREGATION_SPILL_DIR', () => {
    const config = loadConfig(CoordinatorConfig, { LARGE_MODEL_BYTES: '1000', REASSEMBLY_MAX_BYTES: '5000', AGGREGATION_SPILL_DIR: '/var/spill' });
    expect(coordinatorBusOptions(config)).toEqual({ reassemblyMemoryBytes: 1000, maxReassemblyBytes: 5000, reassemblySpillDir: '/var/spill' });
  });

  it('by default: 16 GiB in all, in the system temporary folder', () => {
    const options = coordinatorBusOptions(loadConfig(CoordinatorConfig, {}));
    expect(options).toEqual({ reassemblyMemoryBytes: 256 * 1024 ** 2, maxReassemblyBytes: 16 * 1024 ** 3 });
  });

  it('refuses a bound that is not a positive whole number of bytes, naming it', () => {
    expect(() => loadConfig(CoordinatorConfig, { REASSEMBLY_MAX_BYTES: '0' })).toThrow('REASSEMBLY_MAX_BYTES');
    expect(() => loadConfig(CoordinatorConfig, { REASSEMBLY_MAX_BYTES: '1.5' })).toThrow('REASSEMBLY_MAX_BYTES');
  });
});
