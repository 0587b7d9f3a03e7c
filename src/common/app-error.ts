import { z } from 'zod';

/**
 * Errors as data: every failure the service reports has a stable code. The one table below maps
 * each code to its HTTP status; `ws-close-codes.ts` holds the WebSocket side.
 */
export const ERROR_STATUS = {
  validation_failed: 400,
  bad_request: 400,
  unauthorized: 401,
  invalid_credentials: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  payload_too_large: 413,
  rate_limited: 429,
  internal_error: 500,
  database_unavailable: 503,
  bus_unavailable: 503,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

const errorDetailSchema = z.object({
  field: z.string(),
  message: z.string(),
});

export type ErrorDetail = z.infer<typeof errorDetailSchema>;

/** An error's body, `{ code, message, details? }`, with the codes an answer can carry. */
export const errorBodySchema = <C extends ErrorCode>(codes: readonly C[]) =>
  z.object({
    code: z.enum(codes as [C, ...C[]]),
    message: z.string(),
    /** Set on `validation_failed`: one entry per offending field. */
    details: z.array(errorDetailSchema).optional(),
  });

export class AppError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: ErrorDetail[],
    /** Extra response headers, e.g. `Retry-After`. */
    readonly headers?: Record<string, string>,
  ) {
    super(message);
  }

  get status(): number {
    return ERROR_STATUS[this.code];
  }

  toJSON(): z.infer<ReturnType<typeof errorBodySchema<ErrorCode>>> {
    return this.details ? { code: this.code, message: this.message, details: this.details } : { code: this.code, message: this.message };
  }
}
