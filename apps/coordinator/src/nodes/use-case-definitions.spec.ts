import { DataSource } from 'typeorm';
import { Msg, parsePayload, UseCaseDefinedPayload } from '@fl/contracts';
import { IRIS } from '@fl/datasets';
import { InboundMessage, InMemoryBus } from '@fl/messaging';
import { CoordinatorConfig } from '../config';
import { UseCaseDefinitionsSender } from './use-case-definitions';

describe('UseCaseDefinitionsSender', () => {
  it("sends a registering site each stored use case it does not serve, to its own queue, as the worker's contract reads it", async () => {
    const petals = { ...IRIS, name: 'petals' };
    const query = jest.fn().mockResolvedValue([{ name: 'petals', definition: petals }]);
    const bus = new InMemoryBus();
    const got: InboundMessage[] = [];
    await bus.consume({ name: 'fl.worker.site-1', bindings: ['worker.site-1.#'] }, async (m) => void got.push(m));
    const sender = new UseCaseDefinitionsSender({ query } as unknown as DataSource, bus, { COORDINATOR_ID: 'c-1' } as CoordinatorConfig);

    expect(await sender.sendMissing('site-1', ['iris'])).toEqual(['petals']);
    expect(query).toHaveBeenCalledWith(expect.stringContaining('FROM gateway.use_cases WHERE NOT (name = ANY($1::text[]))'), [['iris']]);
    await new Promise((r) => setTimeout(r, 10));
    expect(got).toHaveLength(1);
    expect(got[0]).toMatchObject({ name: Msg.UseCaseDefined, routingKey: 'worker.site-1.use-case.defined' });
    expect(parsePayload(UseCaseDefinedPayload, got[0].payload)).toMatchObject({ task_id: 0, round: 0, sender: 'c-1', definition: JSON.parse(JSON.stringify(petals)) });

    query.mockResolvedValue([]);
    expect(await sender.sendMissing('site-1', ['iris', 'petals'])).toEqual([]);
    await bus.close();
  });
});
