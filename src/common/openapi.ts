import { applyDecorators } from '@nestjs/common';
import { ApiBody, ApiQuery, ApiResponse } from '@nestjs/swagger';
import { z } from 'zod';
import { ERROR_STATUS, errorBodySchema, type ErrorCode } from './app-error.js';

/**
 * The OpenAPI document (3.1, whose schemas are JSON Schema 2020-12) is derived from zod schemas:
 * the ones the pipes validate requests with, and the ones the controllers' answers are typed by.
 */

type JsonSchema = Record<string, unknown>;

/** Schemas named in the document (`#/components/schemas/<id>`): registered with `apiComponent`. */
const COMPONENTS = z.registry<{ id: string; description?: string }>();
/** The named schemas, in JSON Schema, as the decorators met them. */
const componentSchemas: Record<string, JsonSchema> = {};

/** Names a response schema in the document: generated clients get a type of that name. */
export function apiComponent<S extends z.ZodType>(id: string, schema: S, description?: string): S {
  COMPONENTS.add(schema, { id, description });
  return schema;
}

/** Points `#/$defs/X` at `#/components/schemas/X`. */
function toComponentRefs(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(toComponentRefs);
  if (typeof value !== 'object' || value === null) return value;
  return Object.fromEntries(
    Object.entries(value).map(([key, inner]) => [
      key,
      key === '$ref' && typeof inner === 'string' ? inner.replace('#/$defs/', '#/components/schemas/') : toComponentRefs(inner),
    ]),
  );
}

/**
 * What a request takes (`input`: defaults optional, transforms as the client writes them) or what
 * an answer holds (`output`: every object closed, so an undocumented field is a mismatch).
 */
function jsonSchemaOf(schema: z.ZodType, io: 'input' | 'output'): JsonSchema {
  if (io === 'input') {
    const { $schema: _, ...json } = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as JsonSchema;
    return json;
  }
  const { $schema: _, $defs, ...json } = z.toJSONSchema(schema, { io, unrepresentable: 'any', metadata: COMPONENTS }) as JsonSchema;
  for (const [id, definition] of Object.entries(($defs ?? {}) as Record<string, JsonSchema>)) {
    componentSchemas[id] = toComponentRefs(definition) as JsonSchema;
  }
  return toComponentRefs(json) as JsonSchema;
}

/** The named schemas the decorators referred to, for the document's `components.schemas`. */
export function openApiComponentSchemas(): Record<string, JsonSchema> {
  return { ...componentSchemas };
}

/** Documents a request body from the same zod schema that validates it. */
export function ApiZodBody(schema: z.ZodType): MethodDecorator {
  return ApiBody({ schema: jsonSchemaOf(schema, 'input') });
}

/** Documents each query parameter from the zod object schema that validates the query. */
export function ApiZodQuery(schema: z.ZodObject): MethodDecorator {
  const json = jsonSchemaOf(schema, 'input') as { properties: Record<string, JsonSchema>; required?: string[] };
  return applyDecorators(
    ...Object.entries(json.properties).map(([name, { description, ...property }]) =>
      ApiQuery({ name, required: json.required?.includes(name) ?? false, description: description as string, schema: property }),
    ),
  );
}

/** Documents a successful answer from the zod schema its handler's return type is inferred from. */
export function ApiZodResponse(status: number, description: string, schema?: z.ZodType): MethodDecorator {
  return ApiResponse(schema ? { status, description, schema: jsonSchemaOf(schema, 'output') } : { status, description });
}

/**
 * What any request can meet, whatever its operation: a body that is not JSON (`bad_request`) or
 * larger than `HTTP_BODY_LIMIT_BYTES` (`payload_too_large`) is refused before the handler runs, and
 * a fault answers `internal_error`.
 */
const ANY_REQUEST_ERRORS: readonly ErrorCode[] = ['bad_request', 'payload_too_large', 'internal_error'];

/**
 * Documents the error answers an operation can give, by code: one response per status, listing
 * the codes it can carry. The errors any request can meet are always listed.
 */
export function ApiErrors(...codes: ErrorCode[]): MethodDecorator {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of new Set<ErrorCode>([...codes, ...ANY_REQUEST_ERRORS])) {
    const status = ERROR_STATUS[code];
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  return applyDecorators(
    ...[...byStatus].map(([status, statusCodes]) =>
      ApiResponse({
        status,
        description: statusCodes.map((code) => `\`${code}\``).join(', '),
        schema: jsonSchemaOf(errorBodySchema(statusCodes), 'output'),
        headers: statusCodes.includes('rate_limited')
          ? { 'Retry-After': { description: 'seconds to wait before the next attempt', schema: { type: 'integer', minimum: 1 } } }
          : undefined,
      }),
    ),
  );
}
