import fc from 'fast-check';
import { ClassConstructor, plainToInstance } from 'class-transformer';
import { IsInt, IsOptional, IsString, validateSync, ValidateNested, ValidationError } from 'class-validator';
import { Type } from 'class-transformer';
import { CompiledContract } from './compiled-contract';
import * as payloads from './payloads';
import * as taskSpec from './task-spec';
import { ContractViolation, parsePayload } from './validate';

/** parsePayload as it was before compiled contracts: the two libraries, every time. */
function reference<T extends object>(cls: ClassConstructor<T>, plain: Record<string, unknown>, nameLists: string[]): T | string {
  const lists = nameLists.filter((k) => Array.isArray(plain[k]));
  let source = plain;
  if (lists.length) {
    source = { ...source };
    for (const k of lists) delete source[k];
  }
  const instance = plainToInstance(cls, source, { enableImplicitConversion: false }) as Record<string, unknown>;
  for (const k of lists) instance[k] = (plain[k] as unknown[]).slice();
  const errors = validateSync(instance, { whitelist: true, forbidNonWhitelisted: false });
  return errors.length ? new ContractViolation(cls.name, flatten(errors)).message : (instance as T);
}

function flatten(errors: ValidationError[], prefix = ''): string[] {
  return errors.flatMap((e) => {
    const path = prefix ? `${prefix}.${e.property}` : e.property;
    return [...Object.values(e.constraints ?? {}).map((m) => `${path}: ${m}`), ...flatten(e.children ?? [], path)];
  });
}

function outcome<T extends object>(cls: ClassConstructor<T>, plain: Record<string, unknown>): T | string {
  try {
    return parsePayload(cls, plain);
  } catch (e) {
    if (e instanceof ContractViolation) return e.message;
    throw e;
  }
}

/** Class, own keys in order and values, all the way down: what `toStrictEqual` leaves out is the key order. */
function anatomy(value: unknown): unknown {
  if (typeof value !== 'object' || value === null) return value;
  return [Object.getPrototypeOf(value)?.constructor?.name, Object.keys(value).map((k) => [k, anatomy((value as Record<string, unknown>)[k])])];
}

const sha = (c: string) => c.repeat(64);
const envelope = { task_id: 3, round: 2, sender: 'coord-1', correlation_id: 'c-1' };
const fitConfig = { local_epochs: 1, batch_size: 8, learning_rate: 0.3, seed: 1, proximal_mu: 0.01, report_loss_before_fit: false, dp_clipping_norm: 1, dp_noise_multiplier: 0.5 };

/** A valid example of each contract on a round's path, and of those around it. */
const EXAMPLES: [ClassConstructor<object>, Record<string, unknown>][] = [
  [payloads.Envelope, envelope],
  [
    payloads.RoundInstructionPayload,
    {
      ...envelope,
      use_case: 'iris',
      participants: ['w1-1', 'w2-1'],
      package_sha256: sha('a'),
      weights_sha256: sha('b'),
      reply_to: 'coordinator.c.round.fit-result',
      config: fitConfig,
      evaluates_round: 1,
      evaluators: ['w2-1'],
    },
  ],
  [
    payloads.FitResultPayload,
    {
      ...envelope,
      status: 'ok',
      examples: 40,
      train_loss: 0.25,
      duration_ms: 3,
      weights_sha256: sha('c'),
      loss_before_fit: 0.5,
      evaluation: { ...envelope, round: 1, status: 'ok', examples: 10, loss: 0.4, accuracy: 0.9, duration_ms: 1 },
    },
  ],
  [payloads.EvaluateResultPayload, { ...envelope, status: 'error', error: 'no data', examples: 0, loss: 0, accuracy: 0, duration_ms: 1 }],
  [payloads.StatsRequestPayload, { ...envelope, use_case: 'iris', participants: ['w1-1'], features: 4, reply_to: 'coordinator.c.round.stats-result' }],
  [payloads.StatsResultPayload, { ...envelope, status: 'ok', examples: 12 }],
  [payloads.ModelPackagePayload, { ...envelope, package_sha256: sha('d') }],
  [payloads.TaskStartedPayload, { ...envelope, coordinator: 'c1' }],
  [payloads.TaskFailedPayload, { ...envelope, reason: 'stalled' }],
  [payloads.TasksDeletedPayload, { ...envelope, task_ids: [1, 2, 3] }],
  [payloads.NodeRevokedPayload, { ...envelope, node: 'w1-1' }],
  [
    payloads.TaskSucceededPayload,
    { ...envelope, model_name: 'm', model_version: 2, metrics: { eval_loss: 0.1, eval_accuracy: 0.9, eval_examples: 30, train_loss: 0.2, rounds: 3, epsilon: 1.5, delta: 1e-5 } },
  ],
  [
    payloads.RoundCompletedPayload,
    {
      ...envelope,
      num_rounds: 3,
      figures: { participants: 2, examples: 80, train_loss: 0.2, eval_loss: 0.3, eval_accuracy: 0.8, eval_examples: 30, started_at: 'a', finished_at: 'b', duration_ms: 9, rejected: [{ node: 'w1', reason: 'NaN' }] },
    },
  ],
  [
    payloads.RoundsCompletedPayload,
    {
      ...envelope,
      num_rounds: 3,
      rounds: [
        { round: 1, figures: { participants: 2, examples: 80, train_loss: 0.2, eval_loss: 0.3, eval_accuracy: 0.8, eval_examples: 30, started_at: 'a', finished_at: 'b', duration_ms: 9 } },
        { round: 2, figures: { participants: 1, examples: 40, train_loss: 0.1, eval_loss: 0.2, eval_accuracy: 0.9, eval_examples: 30, started_at: 'b', finished_at: 'c', duration_ms: 8, rejected: [{ node: 'w1', reason: 'NaN' }] } },
      ],
    },
  ],
  [payloads.NodePresencePayload, { ...envelope, use_cases: ['iris'], examples: { iris: { train: 100, test: 50 } }, version: '1' }],
  [
    payloads.TaskSubmittedPayload,
    {
      ...envelope,
      spec: {
        task_id: 3, user_id: '1', use_case: 'iris', model_name: 'iris', model_version: 1, num_global_iterations: 3, run_name: 'r', experiment_name: 'Default',
        settings: { strategy: 'fedavg', min_fit_clients: 1, fraction_fit: 1, local_epochs: 1, batch_size: 8, learning_rate: 0.1, round_timeout_s: 5, seed: 1, privacy: { mode: 'central', noise_multiplier: 1, clipping_norm: 1, adaptive_clipping: false, target_clipped_quantile: 0.5, clip_norm_lr: 0.2, delta: 1e-5 } },
      },
    },
  ],
  [taskSpec.FlSettings, { strategy: 'fedprox', min_fit_clients: 2 }],
];

/** Values a field may be given: each kind of JSON value, and those a contract may accept or nearly accept. */
const anyValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(null, true, false, 0, -1, 1.5, 2_147_483_648, '', 'iris', 'a.b', 'ok', 'error', sha('e'), sha('E'), [], ['w1-1'], ['w1-1', 'bad.name'], [1, 2], [null], {}, { train: 1, test: 2 }),
  fc.constantFrom(fitConfig, { ...fitConfig, local_epochs: 0 }, { ...fitConfig, extra: 1 }, { ...fitConfig, extra: { deep: [1] } }, { node: 'w1', reason: 'r' }, [{ node: 'w1', reason: 'r' }]),
  fc.jsonValue({ maxDepth: 2 }),
);

/** A valid example with some fields changed, removed, or added (unknown ones included). */
function mutated(example: Record<string, unknown>): fc.Arbitrary<Record<string, unknown>> {
  const keys = [...Object.keys(example), 'unknown_field', '__proto__', 'constructor', 'toString', '0'];
  const edit = fc.tuple(fc.constantFrom(...keys), fc.option(anyValue, { nil: undefined, freq: 4 }));
  return fc.array(edit, { maxLength: 3 }).map((edits) => {
    const out: Record<string, unknown> = JSON.parse(JSON.stringify(example));
    for (const [key, value] of edits) {
      if (value === undefined) delete out[key];
      // defineProperty: an own '__proto__' key, as JSON.parse makes one.
      else Object.defineProperty(out, key, { value: structuredClone(value), enumerable: true, writable: true, configurable: true });
    }
    return out;
  });
}

describe('CompiledContract', () => {
  it('answers parsePayload exactly as class-transformer and class-validator did: the same instance, key by key, or the same errors', () => {
    for (const [cls, example] of EXAMPLES) {
      const nameLists = cls === payloads.RoundInstructionPayload || cls === payloads.StatsRequestPayload ? ['participants'] : [];
      fc.assert(
        fc.property(mutated(example), (plain) => {
          const before = JSON.stringify(plain);
          const expected = reference(cls, JSON.parse(before), nameLists);
          const actual = outcome(cls, plain);
          expect(anatomy(actual)).toEqual(anatomy(expected));
          // The message is left as it came.
          expect(JSON.stringify(plain)).toBe(before);
        }),
        { numRuns: 300 },
      );
    }
  });

  it('takes the round messages without the libraries, and leaves invalid ones to them', () => {
    const [, instruction] = EXAMPLES.find(([cls]) => cls === payloads.RoundInstructionPayload)!;
    const compiled = CompiledContract.of(payloads.RoundInstructionPayload)!;
    const parsed = compiled.parse({ ...instruction, ignored: 'x' }, ['participants'])!;
    expect(parsed).toBeInstanceOf(payloads.RoundInstructionPayload);
    expect(parsed.config).toBeInstanceOf(payloads.FitConfig);
    expect(parsed).not.toHaveProperty('ignored');
    expect(parsed.participants).toEqual(instruction.participants);
    expect(parsed.participants).not.toBe(instruction.participants);
    expect(compiled.parse({ ...instruction, ignored: 'x' }, ['participants', 'evaluators'])!.evaluators).toEqual(['w2-1']);
    expect(compiled.parse({ ...instruction, round: -1 }, ['participants'])).toBeUndefined();
    expect(compiled.parse({ ...instruction, config: { ...fitConfig, seed: 'x' } }, ['participants'])).toBeUndefined();
    expect(CompiledContract.of(payloads.FitResultPayload)).not.toBeNull();
    expect(CompiledContract.of(payloads.EvaluateResultPayload)).not.toBeNull();
  });

  it('keeps a class default for a field the payload leaves out, and the constructor-made fields in their order', () => {
    const plain = { min_fit_clients: 3, strategy: 'fedyogi' };
    const parsed = CompiledContract.of(taskSpec.FlSettings)!.parse(plain, [])!;
    expect(parsed.batch_size).toBe(8);
    expect(anatomy(parsed)).toEqual(anatomy(reference(taskSpec.FlSettings, plain, [])));
  });

  it('drops what the contract does not declare, a field the constructor made included, as the whitelist did', () => {
    class Inner {
      @IsInt() n: number;
      scratch = 'made by the constructor';
    }
    class Outer {
      @IsString() name: string;
      @IsOptional() @ValidateNested() @Type(() => Inner) inner?: Inner;
      cache: string[] = [];
    }
    const plain = { cache: 'x', inner: { n: 1, scratch: 'y' }, name: 'n', other: 2 };
    const parsed = CompiledContract.of(Outer)!.parse(plain, [])!;
    expect(Object.keys(parsed)).toEqual(['name', 'inner']);
    expect(Object.keys(parsed.inner!)).toEqual(['n']);
    expect(anatomy(parsed)).toEqual(anatomy(reference(Outer, plain, [])));
  });

  it('compiles no contract for a class without decorators, nor for a nested type chosen from the payload', () => {
    class Bare {
      x?: number;
    }
    class Leaf {
      @IsInt() n: number;
    }
    class Chooser {
      @IsOptional() @ValidateNested() @Type((o) => (o?.object?.kind === 'leaf' ? Leaf : Bare)) child?: Leaf;
      @IsString() kind: string;
    }
    expect(CompiledContract.of(Bare)).toBeNull();
    expect(CompiledContract.of(Chooser)).toBeNull();
    expect(() => parsePayload(Bare, {})).toThrow('unknown value');
    expect(parsePayload(Chooser, { kind: 'leaf', child: { n: 1 } }).child).toBeInstanceOf(Leaf);
  });
});
