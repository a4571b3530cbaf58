import { ArgumentMetadata, BadRequestException } from '@nestjs/common';
import { createValidationPipe } from '../../common/validation';
import { CreateTaskDto } from './create-task.dto';

/** The body as the gateway's global pipe sees it: unknown fields refused, every bad field named. */
describe('CreateTaskDto', () => {
  const pipe = createValidationPipe();
  const meta: ArgumentMetadata = { type: 'body', metatype: CreateTaskDto };
  const predecessorBody = { user_id: '1', use_case: 'iris', model_name: 'iris', model_version: 1, num_global_iterations: 3, run_name: 'test_run', experiment_name: 'Default' };

  async function rejection(body: unknown): Promise<{ field: string; reason: string }[]> {
    try {
      await pipe.transform(body, meta);
    } catch (err) {
      expect(err).toBeInstanceOf(BadRequestException);
      return ((err as BadRequestException).getResponse() as { details: { field: string; reason: string }[] }).details;
    }
    throw new Error('body was accepted');
  }

  it("accepts the predecessor's body unchanged, settings optional", async () => {
    const dto = await pipe.transform({ ...predecessorBody }, meta);
    expect(dto).toBeInstanceOf(CreateTaskDto);
    expect(dto).toEqual(predecessorBody);
    const withSettings = await pipe.transform({ ...predecessorBody, min_fit_clients: 3, fraction_fit: 0.5, learning_rate: 0.05, round_timeout_s: 0.5 }, meta);
    expect(withSettings.min_fit_clients).toBe(3);
  });

  it.each([
    ['a missing field', { ...predecessorBody, user_id: undefined }, 'user_id'],
    ['an ill-typed field', { ...predecessorBody, model_version: '1' }, 'model_version'],
    ['a fractional version', { ...predecessorBody, model_version: 1.5 }, 'model_version'],
    ['zero rounds', { ...predecessorBody, num_global_iterations: 0 }, 'num_global_iterations'],
    ['an unknown field', { ...predecessorBody, rounds: 3 }, 'rounds'],
    ['a use case that cannot be a routing word', { ...predecessorBody, use_case: 'iris.v2' }, 'use_case'],
    ['a model name with a control character', { ...predecessorBody, model_name: 'iris\n' }, 'model_name'],
    ['an empty model name', { ...predecessorBody, model_name: '' }, 'model_name'],
    ['an unknown strategy', { ...predecessorBody, strategy: 'fedsgd' }, 'strategy'],
    ['a fraction above 1', { ...predecessorBody, fraction_fit: 1.5 }, 'fraction_fit'],
    ['a negative learning rate', { ...predecessorBody, learning_rate: -0.1 }, 'learning_rate'],
  ])('refuses %s, naming it', async (_, body, field) => {
    const details = await rejection(body);
    expect(details.map((d) => d.field)).toEqual([field]);
    expect(details[0].reason).toContain(field);
  });

  it.each([
    ['{"prototype":{}}', 'prototype'],
    ['{"__proto__":{"admin":true}}', '__proto__'],
    ['{"constructor":1}', 'constructor'],
    ['{"valueOf":{}}', 'valueOf'],
    ['{"toString":"x"}', 'toString'],
    ['{"hasOwnProperty":1}', 'hasOwnProperty'],
    ['{"strategy_params":{"prototype":{"x":1}}}', 'strategy_params.prototype'],
  ])('refuses a prototype key (%s) that Nest or class-transformer would drop, naming it', async (extra, field) => {
    // As the JSON body parser makes them: own properties, __proto__ included.
    const body = { ...predecessorBody, ...(JSON.parse(extra) as object) };
    const details = await rejection(body);
    expect(details).toEqual([{ field, reason: `property ${field} should not exist` }]);
  });

  it('names every bad field at once', async () => {
    const details = await rejection({ model_version: 'x' });
    expect(details.map((d) => d.field)).toEqual(expect.arrayContaining(['user_id', 'use_case', 'model_name', 'model_version', 'num_global_iterations', 'run_name', 'experiment_name']));
  });
});
