import { ValidationError, ValidationPipe } from '@nestjs/common';
import { RpcException } from '@nestjs/microservices';

export const INVALID_PAYLOAD = 'INVALID_PAYLOAD';

/**
 * The project's ValidationPipe options, with rejections raised as `RpcException({ code, message,
 * errors })` so that the dead-letter log says which field failed and why. A plain ValidationPipe
 * dead-letters too, but its BadRequestException reaches the bus as Nest's generic
 * "Internal server error".
 */
export function createBusValidationPipe(): ValidationPipe {
  return new ValidationPipe({
    whitelist: true,
    forbidNonWhitelisted: true,
    transform: true,
    exceptionFactory: (errors) =>
      new RpcException({ code: INVALID_PAYLOAD, message: 'payload failed validation', errors: flatten(errors) }),
  });
}

function flatten(errors: ValidationError[], parent = ''): { property: string; reasons: string[] }[] {
  return errors.flatMap((e) => {
    const property = parent ? `${parent}.${e.property}` : e.property;
    const own = e.constraints ? [{ property, reasons: Object.values(e.constraints) }] : [];
    return [...own, ...flatten(e.children ?? [], property)];
  });
}
