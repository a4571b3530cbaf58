import { createDataSource, createTestDatabase, runMigrations } from '@fl/persistence';
import { LocalModelRegistry } from './local-model-registry';
import { localRegistryContract } from './local-model-registry.contract';

jest.setTimeout(60_000);

localRegistryContract('real PostgreSQL', async (artifactDir) => {
  const db = await createTestDatabase('fl_test_registry');
  const ds = createDataSource({ url: db.url, poolSize: 8, applicationName: 'registry-spec' });
  await runMigrations(ds);
  return {
    registry: new LocalModelRegistry({ dataSource: ds, artifactDir }),
    async teardown() {
      await ds.destroy();
      await db.drop();
    },
  };
});
