import { BadRequestException, PipeTransform } from '@nestjs/common';

/**
 * A path parameter that must be a PostgreSQL integer from 1 up: anything else
 * is a 400 naming the parameter, never a database error.
 */
export function positiveIntParam(field: string): PipeTransform<string, number> {
  return {
    transform(value: string): number {
      const n = Number(value);
      if (!/^\d+$/.test(value) || n < 1 || n > 2147483647) {
        const reason = 'must be an integer from 1 to 2147483647';
        throw new BadRequestException({ message: `${field} ${reason}, got '${value}'`, details: [{ field, reason }] });
      }
      return n;
    },
  };
}
