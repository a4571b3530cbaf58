import { plainToInstance, ClassConstructor } from 'class-transformer';
import { validateSync, ValidateBy, ValidationError, ValidationOptions } from 'class-validator';
import { CompiledContract } from './compiled-contract';

export class ContractViolation extends Error {
  constructor(
    readonly contract: string,
    readonly problems: string[],
  ) {
    super(`${contract}: ${problems.join('; ')}`);
    this.name = 'ContractViolation';
  }
}

function flatten(errors: ValidationError[], prefix = ''): string[] {
  return errors.flatMap((e) => {
    const path = prefix ? `${prefix}.${e.property}` : e.property;
    const own = Object.values(e.constraints ?? {}).map((m) => `${path}: ${m}`);
    return [...own, ...flatten(e.children ?? [], path)];
  });
}

/** Properties declared as lists of names (NamesMatching), per class: copied as they are, not walked by class-transformer. */
const nameLists = new Map<Function, Set<string>>();

function nameListsOf(cls: Function): string[] {
  const out: string[] = [];
  for (let c: Function | null = cls; c && c !== Object; c = Object.getPrototypeOf(c) as Function | null) out.push(...(nameLists.get(c) ?? []));
  return out;
}

/**
 * An array of names each matching `pattern`, checked in one loop. A round's
 * instruction names every site taking part and every site of the use case
 * parses it: class-transformer walking such an array value by value and
 * class-validator's `{ each: true }` cost about 0.5 us per name, which grows
 * as sites x sites across a federation (a simulator of 1,000 virtual sites
 * spent most of its time there). parsePayload copies the list as it is; the
 * check here is a plain loop. The message names the first entry that does not match.
 */
export function NamesMatching(pattern: RegExp, options?: ValidationOptions): PropertyDecorator {
  const firstBad = (value: unknown[]): number => {
    for (let i = 0; i < value.length; i++) if (typeof value[i] !== 'string' || !pattern.test(value[i] as string)) return i;
    return value.length;
  };
  const validation = ValidateBy(
    {
      name: 'namesMatching',
      constraints: [pattern],
      validator: {
        validate: (value: unknown) => Array.isArray(value) && firstBad(value) === value.length,
        defaultMessage: (args) => {
          const value: unknown = args?.value;
          if (!Array.isArray(value)) return `${args?.property} must be an array of names`;
          const i = firstBad(value);
          return `${args?.property}[${i}] (${JSON.stringify(value[i])}) must match ${pattern}`;
        },
      },
    },
    options,
  );
  return (target, property) => {
    const lists = nameLists.get(target.constructor) ?? nameLists.set(target.constructor, new Set()).get(target.constructor)!;
    lists.add(String(property));
    validation(target, property);
  };
}

/** Parses and validates a plain payload into its contract class, or throws naming each bad field. */
export function parsePayload<T extends object>(cls: ClassConstructor<T>, plain: unknown, opts: { implicitConversion?: boolean } = {}): T {
  if (plain === null || typeof plain !== 'object') {
    throw new ContractViolation(cls.name, ['payload must be an object']);
  }
  const names = nameListsOf(cls);
  // A payload that passes, of JSON values, as the two libraries below would have it, without their per-call lookups.
  if (!opts.implicitConversion && Object.getPrototypeOf(plain) === Object.prototype) {
    const parsed = CompiledContract.of(cls)?.parse(plain as Record<string, unknown>, names);
    if (parsed) return parsed;
  }
  // Lists of names go around class-transformer (copied, so the instance shares nothing with the message); NamesMatching checks them.
  const lists = names.filter((k) => Array.isArray((plain as Record<string, unknown>)[k]));
  let source = plain as Record<string, unknown>;
  if (lists.length) {
    source = { ...source };
    for (const k of lists) delete source[k];
  }
  const instance = plainToInstance(cls, source, { enableImplicitConversion: opts.implicitConversion ?? false });
  for (const k of lists) (instance as Record<string, unknown>)[k] = ((plain as Record<string, unknown>)[k] as unknown[]).slice();
  const errors = validateSync(instance, { whitelist: true, forbidNonWhitelisted: false });
  if (errors.length > 0) throw new ContractViolation(cls.name, flatten(errors));
  return instance;
}
