import { ArgumentsHost, Catch, ExceptionFilter, HttpException, HttpStatus, Logger } from '@nestjs/common';
import type { Request, Response } from 'express';
import { RegistryError, RegistryErrorCode, RegistryValidationError } from '@fl/registry';
import { requestCorrelationId } from './correlation';

const REGISTRY_STATUS: Record<RegistryErrorCode, number> = {
  INVALID_ARGUMENT: HttpStatus.BAD_REQUEST,
  NOT_FOUND: HttpStatus.NOT_FOUND,
  CONFLICT: HttpStatus.CONFLICT,
  BACKEND: HttpStatus.BAD_GATEWAY,
};

interface Detail {
  field: string;
  reason: string;
}

function isClientError(e: unknown): e is { status: number; message: string } {
  const x = e as { status?: unknown; expose?: unknown };
  return typeof x?.status === 'number' && x.status >= 400 && x.status < 500 && x.expose === true;
}

/**
 * One error body for every HTTP error: status, error name, a message a person
 * can act on, the fields at fault, and a correlation id that also appears in
 * the log line. Unexpected errors are logged with their stack and answered
 * 500 without internals.
 */
@Catch()
export class HttpErrorFilter implements ExceptionFilter {
  private readonly log = new Logger('HttpError');

  catch(exception: unknown, host: ArgumentsHost): void {
    if (host.getType() !== 'http') throw exception;
    const ctx = host.switchToHttp();
    const res = ctx.getResponse<Response>();
    const req = ctx.getRequest<Request>();
    const correlationId = requestCorrelationId(req);
    let status = HttpStatus.INTERNAL_SERVER_ERROR;
    let message = 'internal error';
    let details: Detail[] | undefined;
    if (exception instanceof RegistryError) {
      // The registry's own codes: bad argument 400, missing 404, conflict 409, backend failure 502.
      status = REGISTRY_STATUS[exception.code];
      message = exception.message;
      if (exception instanceof RegistryValidationError) details = [{ field: exception.field, reason: exception.message }];
      if (status >= 500) this.log.error(`${correlationId} ${req.method} ${req.url}: ${exception.message}`);
    } else if (exception instanceof HttpException) {
      status = exception.getStatus();
      const body = exception.getResponse();
      if (typeof body === 'string') message = body;
      else {
        const b = body as { message?: string | string[]; details?: Detail[] };
        message = Array.isArray(b.message) ? b.message.join('; ') : (b.message ?? exception.message);
        details = b.details;
      }
      if (status >= 500) this.log.error(`${correlationId} ${req.method} ${req.url}: ${message}`);
    } else if (isClientError(exception)) {
      // body-parser's errors (malformed JSON, body too large) carry their own 4xx status.
      status = exception.status;
      message = `invalid request body: ${exception.message}`;
    } else {
      this.log.error(`${correlationId} ${req.method} ${req.url}: ${(exception as Error)?.stack ?? exception}`);
    }
    const error = HttpStatus[status]?.split('_').map((w) => w[0] + w.slice(1).toLowerCase()).join(' ') ?? 'Error';
    res.setHeader('x-correlation-id', correlationId);
    res.status(status).json({ statusCode: status, error, message, ...(details ? { details } : {}), correlation_id: correlationId });
  }
}
