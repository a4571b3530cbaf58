import { BadRequestException, ValidationError, ValidationPipe } from '@nestjs/common';

/** One entry per field at fault, with every reason it fails. */
function flatten(errors: ValidationError[], prefix = ''): { field: string; reason: string }[] {
  return errors.flatMap((e) => {
    const field = prefix ? `${prefix}.${e.property}` : e.property;
    const reasons = Object.values(e.constraints ?? {});
    return [...(reasons.length ? [{ field, reason: reasons.join('; ') }] : []), ...flatten(e.children ?? [], field)];
  });
}

/** Unknown fields are refused, not dropped; every bad field is named. */
export function createValidationPipe(): ValidationPipe {
  return new ValidationPipe({
    whitelist: true,
    forbidNonWhitelisted: true,
    transform: true,
    exceptionFactory: (errors) => {
      const details = flatten(errors);
      return new BadRequestException({ message: `invalid request: ${details.map((d) => d.reason).join('; ')}`, details });
    },
  });
}
