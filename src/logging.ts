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
      // Headers that carry credentials are removed, not masked: nothing of them is written.
      redact: {
        paths: ['req.headers.authorization', 'req.headers["x-api-key"]', 'req.headers.cookie', 'res.headers["set-cookie"]'],
        remove: true,
      },
      serializers: {
        req: (req: IncomingMessage & { id?: unknown; raw?: unknown }) => ({
          id: req.id,
          method: req.method,
          url: redactUrl(req.url),
          headers: req.headers,
        }),
      },
      transport:
        env.NODE_ENV === 'development' && process.stdout.isTTY
          ? { target: 'pino-pretty', options: { singleLine: true } }
          : undefined,
  } satisfies Params['pinoHttp'];
  return { pinoHttp: destination ? [{ ...options, transport: undefined }, destination] : options };
}
