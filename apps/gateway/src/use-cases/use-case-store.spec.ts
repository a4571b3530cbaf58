import { Logger } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { Msg, parsePayload, UseCaseDefinedPayload } from '@fl/contracts';
import { IRIS } from '@fl/datasets';
import { InboundMessage, InMemoryBus, MessageBus } from '@fl/messaging';
import { UseCaseStore } from './use-case-store';

describe('UseCaseStore: a use case added at the gateway', () => {
  const inserted = { query: jest.fn().mockResolvedValue([{ name: 'x' }]) } as unknown as DataSource;

  it('is sent to every edge worker once stored', async () => {
    const bus = new InMemoryBus();
    const got: InboundMessage[] = [];
    await bus.consume({ name: 'fl.worker.site-1', bindings: ['nodes.all.#'] }, async (m) => void got.push(m));
    const petals = { ...IRIS, name: 'petals' };
    await new UseCaseStore(inserted, bus).add(petals, 'admin');
    await new Promise((r) => setTimeout(r, 10));
    expect(got).toHaveLength(1);
    expect(got[0]).toMatchObject({ name: Msg.UseCaseDefined, routingKey: 'nodes.all.use-case.defined' });
    expect(parsePayload(UseCaseDefinedPayload, got[0].payload)).toMatchObject({ sender: 'gateway', definition: JSON.parse(JSON.stringify(petals)) });
    await bus.close();
  });

  it('stays stored when the broker does not take the message, saying so in the log', async () => {
    const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const bus = { publish: jest.fn().mockRejectedValue(new Error('broker down')) } as unknown as MessageBus;
    const store = new UseCaseStore(inserted, bus);
    await expect(store.add({ ...IRIS, name: 'sepals' }, 'admin')).resolves.toBeUndefined();
    expect(store.catalog.find('sepals')).toBeDefined();
    expect(warn).toHaveBeenCalledWith(
      "use case 'sepals' stored, not yet sent to the edge workers (broker down); sites get it from a coordinator when they register",
    );
    warn.mockRestore();
  });
});
