import type { IncomingMessage } from 'node:http';
import type { Writable } from 'node:stream';
import type { Params } from 'nestjs-pino';
import type { AppEnv } from './config/app-config.js';

/** Query parameters that carry secrets; their values never reach the logs. */
const SECRET_PARAMS = /([?&](?:token|access_token|api_key|key)=)[^&]*/gi;

export function redactUrl(url: string | undefined): string | undefined {
  return url?.replace(SECRET_PARAMS, '$1[REDACTED]');
}

/** `destination` replaces stdout (the e2e tests read the logs through it). */
export function loggerOptions(env: AppEnv, destination?: Writable): Params {
  const options = {
    level: env.LOG_LEVEL,
    // Headers that carry credentials are removed, not masked: nothing of them is written (a
    // second line of defence: the request serializer below logs no headers object at all).
    redact: {
      paths: ['req.headers.authorization', 'req.headers["x-api-key"]', 'req.headers.cookie', 'res.headers["set-cookie"]'],
      remove: true,
    },
    // A request's fields are serialized when pino-http makes its per-request logger, on every
    // request whether or not a line is written: keep them few (making that logger, headers
    // included, was about 11 % of a one-signal sync request's CPU in a profile), and never a
    // credential.
    serializers: {
      req: (req: IncomingMessage & { id?: unknown }) => ({
        id: req.id,
        method: req.method,
        url: redactUrl(req.url),
        userAgent: req.headers['user-agent'],
      }),
    },
    transport:
      env.NODE_ENV === 'development' && process.stdout.isTTY ? { target: 'pino-pretty', options: { singleLine: true } } : undefined,
  } satisfies Params['pinoHttp'];
  return { pinoHttp: destination ? [{ ...options, transport: undefined }, destination] : options };
}
