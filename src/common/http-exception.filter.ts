import { Catch, HttpException, Logger, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import type { Response } from 'express';
import { AppError, type ErrorCode } from './app-error.js';
import { isDatabaseUnavailable } from '../database/database-errors.js';

const CODE_BY_STATUS: Record<number, ErrorCode> = {
  400: 'bad_request',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  409: 'conflict',
  413: 'payload_too_large',
  429: 'rate_limited',
  503: 'database_unavailable',
};

/**
 * Statuses that are the answer to a conditional or partial request (the static files'): they are
 * kept as they are, with the `bad_request` body, rather than flattened into a 400.
 */
const KEPT_STATUSES = new Set([405, 406, 412, 416]);
function kept(exception: unknown): number | undefined {
  const status = exception instanceof HttpException ? exception.getStatus() : (exception as { status?: unknown } | undefined)?.status;
  return typeof status === 'number' && KEPT_STATUSES.has(status) ? status : undefined;
}

/** Turns every error into `{ code, message, details? }` with the status from `ERROR_STATUS`. */
@Catch()
export class HttpExceptionFilter implements ExceptionFilter {
  private readonly logger = new Logger('HttpError');

  catch(exception: unknown, host: ArgumentsHost): void {
    const response = host.switchToHttp().getResponse<Response>();
    const error = this.toAppError(exception);
    if (error.status >= 500 && error.code !== 'database_unavailable') {
      this.logger.error(exception instanceof Error ? (exception.stack ?? exception.message) : String(exception));
    }
    for (const [name, value] of Object.entries(error.headers ?? {})) response.setHeader(name, value);
    // An error is never cached (a static file's year-long header must not stick to its 416).
    response.setHeader('Cache-Control', 'no-store');
    response.status(kept(exception) ?? error.status).json(error.toJSON());
  }

  private toAppError(exception: unknown): AppError {
    if (exception instanceof AppError) return exception;
    if (isDatabaseUnavailable(exception)) {
      return new AppError('database_unavailable', 'The database is unavailable; retry later');
    }
    if (exception instanceof HttpException) {
      const status = exception.getStatus();
      const code = CODE_BY_STATUS[status] ?? (status >= 500 ? 'internal_error' : 'bad_request');
      // Body-parser failures (malformed JSON, too large) arrive here as HttpExceptions.
      return new AppError(code, exception.message);
    }
    const status = (exception as { status?: unknown })?.status;
    if (status === 413) return new AppError('payload_too_large', 'Request body too large');
    if (status === 400) return new AppError('bad_request', 'Malformed request body');
    return new AppError('internal_error', 'Internal server error');
  }
}
