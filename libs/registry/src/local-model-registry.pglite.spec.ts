import * as path from 'node:path';
import { createDataSource, runMigrations, startEmbeddedPostgres } from '@fl/persistence';
import { LocalModelRegistry } from './local-model-registry';
import { localRegistryContract } from './local-model-registry.contract';

jest.setTimeout(120_000);

localRegistryContract('embedded PGlite', async (artifactDir) => {
  // on disk, in the test's temp dir (exercises the lock file path too)
  const pg = await startEmbeddedPostgres({ dataDir: path.join(artifactDir, '..', `${path.basename(artifactDir)}-pgdata`) });
  const ds = createDataSource({ url: pg.url, poolSize: 1, applicationName: 'registry-pglite-spec' });
  await runMigrations(ds);
  return {
    registry: new LocalModelRegistry({ dataSource: ds, artifactDir }),
    async teardown() {
      await ds.destroy();
      await pg.close();
      if (pg.dataDir) require('node:fs').rmSync(pg.dataDir, { recursive: true, force: true });
    },
  };
});
