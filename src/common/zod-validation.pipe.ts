import type { PipeTransform } from '@nestjs/common';
import type { z } from 'zod';
import { AppError, type ErrorDetail } from './app-error.js';

/** Field path as the client wrote it: `take_profits[1]`, `items[0].symbol`. */
function fieldName(path: PropertyKey[]): string {
  return path.reduce<string>(
    (name, part) => (typeof part === 'number' ? `${name}[${part}]` : name ? `${name}.${String(part)}` : String(part)),
    '',
  );
}

export function zodIssues(error: z.ZodError): ErrorDetail[] {
  return error.issues.flatMap((issue) => {
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((key) => ({ field: fieldName([...issue.path, key]), message: 'unknown field' }));
    }
    return [{ field: fieldName(issue.path) || '(body)', message: issue.message }];
  });
}

export function validationError(details: ErrorDetail[]): AppError {
  const summary = details.map((detail) => `${detail.field}: ${detail.message}`).join('; ');
  return new AppError('validation_failed', `Invalid request: ${summary}`, details);
}

/** Validates and converts a request part with a zod schema; failures are 400 with each field named. */
export class ZodValidationPipe<S extends z.ZodType> implements PipeTransform<unknown, z.output<S>> {
  /** `field`: the name of a single value (a path parameter), for its errors. */
  constructor(
    private readonly schema: S,
    private readonly field?: string,
  ) {}

  transform(value: unknown): z.output<S> {
    const result = this.schema.safeParse(value);
    if (!result.success) {
      const details = zodIssues(result.error);
      throw validationError(this.field ? details.map((detail) => ({ ...detail, field: this.field! })) : details);
    }
    return result.data;
  }
}
