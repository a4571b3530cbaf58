import { BadRequestException, ValidationError, ValidationPipe } from '@nestjs/common';

/** One entry per field at fault, with every reason it fails. */
function flatten(errors: ValidationError[], prefix = ''): { field: string; reason: string }[] {
  return errors.flatMap((e) => {
    const field = prefix ? `${prefix}.${e.property}` : e.property;
    const reasons = Object.values(e.constraints ?? {});
    return [...(reasons.length ? [{ field, reason: reasons.join('; ') }] : []), ...flatten(e.children ?? [], field)];
  });
}

/**
 * Keys that name what every object has (`__proto__`, `constructor`,
 * `valueOf`, `toString`, ...), and `prototype`: Nest's ValidationPipe deletes
 * some of them and class-transformer drops the rest, so the body would pass
 * without them; here they are refused like any unknown field.
 */
const isPrototypeKey = (key: string): boolean => key === 'prototype' || key in Object.prototype;

/** Where a parsed body holds a prototype key (own properties only, as JSON.parse makes them), as field paths. */
function prototypeKeys(value: unknown, path: string, found: string[]): string[] {
  if (value === null || typeof value !== 'object' || ArrayBuffer.isView(value)) return found;
  // Object.entries: own keys only, and an array's items without its holes.
  for (const [key, v] of Object.entries(value)) {
    const field = path ? `${path}.${key}` : key;
    if (!Array.isArray(value) && isPrototypeKey(key)) found.push(field);
    else prototypeKeys(v, field, found);
  }
  return found;
}

/**
 * The project's pipe: a field named like a prototype key is refused with the
 * others, where Nest's pipe and class-transformer would drop it and accept the body.
 */
class RefusingValidationPipe extends ValidationPipe {
  protected stripProtoKeys(value: unknown): void {
    const fields = prototypeKeys(value, '', []);
    if (fields.length) {
      const details = fields.map((field) => ({ field, reason: `property ${field} should not exist` }));
      throw new BadRequestException({ message: `invalid request: ${details.map((d) => d.reason).join('; ')}`, details });
    }
    super.stripProtoKeys(value);
  }
}

/** Unknown fields are refused, not dropped; every bad field is named. */
export function createValidationPipe(): ValidationPipe {
  return new RefusingValidationPipe({
    whitelist: true,
    forbidNonWhitelisted: true,
    transform: true,
    exceptionFactory: (errors) => {
      const details = flatten(errors);
      return new BadRequestException({ message: `invalid request: ${details.map((d) => d.reason).join('; ')}`, details });
    },
  });
}
