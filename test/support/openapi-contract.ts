import type { NestExpressApplication } from '@nestjs/platform-express';
import type { OpenAPIObject } from '@nestjs/swagger';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import ajvFormats from 'ajv-formats';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { openApiDocument } from '../../src/app.factory.js';

/**
 * Holds every answer an in-process test app gives to the OpenAPI document it serves: a documented
 * operation answering with an undeclared status, or with a body its declared schema refuses, is a
 * violation, and `startApp`'s `close()` fails the test file with the list. Every e2e suite that
 * boots the app in-process therefore checks the document against real traffic.
 */

export interface ObservedAnswer {
  /** `GET /api/v1/admin/users/{id}`: the operation, as the document names it. */
  operation: string;
  status: number;
  /** The error's code, for an error answer. */
  code?: string;
}

interface Operation {
  name: string;
  /** Declared statuses, with the validator of each one's JSON body (none: no body). */
  responses: Map<number, ValidateFunction | undefined>;
}

interface Route {
  pattern: RegExp;
  operations: Map<string, Operation>;
}

const DOCUMENT_ID = 'https://signalcast.invalid/openapi.json';
/** Compiled once per worker for each distinct document (the apps of a suite serve the same one). */
const compiled = new Map<string, Route[]>();

const pointer = (...parts: string[]) => parts.map((part) => part.replaceAll('~', '~0').replaceAll('/', '~1')).join('/');

function compile(document: OpenAPIObject): Route[] {
  const key = JSON.stringify(document);
  const cached = compiled.get(key);
  if (cached) return cached;
  // Not strict: the document is added whole, so its schemas' `#/components/...` references resolve.
  const ajv = new Ajv2020({ allErrors: true, strict: false });
  ajvFormats.default(ajv);
  ajv.addSchema(document as object, DOCUMENT_ID);
  const routes = Object.entries(document.paths).map(([path, item]) => {
    const operations = new Map<string, Operation>();
    for (const method of ['get', 'post', 'put', 'patch', 'delete'] as const) {
      const operation = item[method];
      if (!operation) continue;
      const responses = new Map<number, ValidateFunction | undefined>();
      for (const [status, response] of Object.entries(operation.responses ?? {})) {
        const schema = response && 'content' in response ? response.content?.['application/json']?.schema : undefined;
        const ref = `${DOCUMENT_ID}#/${pointer('paths', path, method, 'responses', status, 'content', 'application/json', 'schema')}`;
        responses.set(Number(status), schema ? ajv.compile({ $ref: ref }) : undefined);
      }
      operations.set(method.toUpperCase(), { name: `${method.toUpperCase()} ${path}`, responses });
    }
    const pattern = new RegExp(`^${path.replace(/\{[^}]+\}/g, '[^/]+')}/?$`);
    return { pattern, operations };
  });
  compiled.set(key, routes);
  return routes;
}

export class OpenApiContract {
  readonly observed: ObservedAnswer[] = [];
  readonly violations: string[] = [];
  private routes?: Route[];

  /**
   * Installs the check on an app that is created but not yet listening: on the HTTP server, ahead
   * of Express, so that answers given before any route (the body parser's 400 and 413) are seen too.
   */
  constructor(private readonly app: NestExpressApplication) {
    (app.getHttpServer() as Server).prependListener('request', (request, response) => this.watch(request, response));
  }

  /** Throws when an answer did not match the document. */
  assertHeld(): void {
    if (this.violations.length === 0) return;
    const shown = this.violations.slice(0, 10).join('\n  ');
    throw new Error(`${this.violations.length} answer(s) do not match the OpenAPI document:\n  ${shown}`);
  }

  private watch(request: IncomingMessage, response: ServerResponse): void {
    this.routes ??= compile(openApiDocument(this.app));
    const path = (request.url ?? '').split('?')[0]!;
    const operation = this.routes.find((route) => route.pattern.test(path))?.operations.get(request.method ?? '');
    if (!operation) return;
    const chunks: Buffer[] = [];
    const keep = (chunk: unknown, encoding?: unknown) => {
      if (typeof chunk === 'string') chunks.push(Buffer.from(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8'));
      else if (chunk instanceof Uint8Array) chunks.push(Buffer.from(chunk));
    };
    const write = response.write.bind(response) as (...args: unknown[]) => boolean;
    const end = response.end.bind(response) as (...args: unknown[]) => ServerResponse;
    response.write = ((chunk: unknown, ...rest: unknown[]) => {
      keep(chunk, rest[0]);
      return write(chunk, ...rest);
    }) as ServerResponse['write'];
    response.end = ((chunk?: unknown, ...rest: unknown[]) => {
      if (typeof chunk !== 'function') keep(chunk, rest[0]);
      return end(chunk, ...rest);
    }) as ServerResponse['end'];
    response.on('finish', () => this.check(operation, response, Buffer.concat(chunks)));
  }

  private check(operation: Operation, response: ServerResponse, body: Buffer): void {
    const status = response.statusCode;
    const text = body.toString('utf8');
    const answer = `${operation.name} → ${status} ${text.slice(0, 300)}`;
    if (!operation.responses.has(status)) {
      this.violations.push(`undeclared status: ${answer}`);
      return;
    }
    const validate = operation.responses.get(status);
    if (!validate) {
      if (body.length > 0) this.violations.push(`a body where none is declared: ${answer}`);
      this.observed.push({ operation: operation.name, status });
      return;
    }
    const type = String(response.getHeader('content-type') ?? '');
    if (!type.startsWith('application/json')) {
      this.violations.push(`content-type ${type || '(none)'} where JSON is declared: ${answer}`);
      return;
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      this.violations.push(`a body that is not JSON: ${answer}`);
      return;
    }
    if (!validate(json)) {
      const errors = (validate.errors ?? []).map((error) => `${error.instancePath || '(root)'} ${error.message}`).join('; ');
      this.violations.push(`${errors}: ${answer}`);
      return;
    }
    const code = status >= 400 ? (json as { code?: string }).code : undefined;
    this.observed.push({ operation: operation.name, status, ...(code !== undefined && { code }) });
  }
}
