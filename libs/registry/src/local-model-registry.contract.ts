/**
 * The ModelRegistry contract plus what only the built-in backend promises (its source
 * URIs, its folder layout, its stricter model names); run against real PostgreSQL and
 * embedded PGlite by the two local-model-registry specs beside this one.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LocalModelRegistry } from './local-model-registry';
import { registryContract } from './registry.contract';

export function localRegistryContract(
  label: string,
  setup: (artifactDir: string) => Promise<{ registry: LocalModelRegistry; teardown(): Promise<void> }>,
) {
  let artifactDir = '';
  registryContract(
    `LocalModelRegistry (${label})`,
    async () => {
      artifactDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fl-registry-'));
      const { registry, teardown } = await setup(artifactDir);
      return {
        registry,
        async teardown() {
          await teardown();
          fs.rmSync(artifactDir, { recursive: true, force: true });
        },
      };
    },
    (get) => {
      it('local: sources are local-artifacts:/<name>/<version>; files sit in the artifact folder; no staging debris', async () => {
        const reg = get();
        expect((await reg.getVersion('mlp', 1))!.source).toBe('local-artifacts:/mlp/1');
        expect(fs.existsSync(path.join(artifactDir, 'bytes', '1', 'weights', 'init.safetensors'))).toBe(true);
        expect(fs.readdirSync(path.join(artifactDir, '.staging'))).toEqual([]);
        expect(fs.existsSync(path.join(artifactDir, 'evil'))).toBe(false);
        expect(fs.existsSync(path.join(os.tmpdir(), 'evil'))).toBe(false);
      });

      it('local: model names are 1-128 of [A-Za-z0-9._-], starting with a letter or digit', async () => {
        for (const n of ['../x', 'a/b', '.hidden', '', 'x'.repeat(129), 'sp ace']) {
          await expect(get().createModel(n)).rejects.toThrow(/Invalid model name/);
        }
      });
    },
  );
}
