import { plainToInstance, ClassConstructor } from 'class-transformer';
import { validateSync, ValidationError } from 'class-validator';

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

/** Parses and validates a plain payload into its contract class, or throws naming each bad field. */
export function parsePayload<T extends object>(cls: ClassConstructor<T>, plain: unknown, opts: { implicitConversion?: boolean } = {}): T {
  if (plain === null || typeof plain !== 'object') {
    throw new ContractViolation(cls.name, ['payload must be an object']);
  }
  const instance = plainToInstance(cls, plain, { enableImplicitConversion: opts.implicitConversion ?? false });
  const errors = validateSync(instance, { whitelist: true, forbidNonWhitelisted: false });
  if (errors.length > 0) throw new ContractViolation(cls.name, flatten(errors));
  return instance;
}
