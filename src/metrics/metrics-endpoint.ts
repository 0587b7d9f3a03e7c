import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { AppConfig } from '../config/app-config.js';
import { Metrics } from './metrics.js';

export const METRICS_ROUTE = '/metrics';

const digest = (value: string) => createHash('sha256').update(value).digest();

/** The bearer token check, in constant time (both sides hashed to the same length first). */
function presents(request: IncomingMessage, token: string): boolean {
  const match = /^Bearer (.+)$/i.exec(request.headers.authorization ?? '');
  return match !== null && timingSafeEqual(digest(match[1]!.trim()), digest(token));
}

function answerJson(response: ServerResponse, status: number, code: string, message: string, headers: Record<string, string> = {}): void {
  response.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store', ...headers });
  response.end(JSON.stringify({ code, message }));
}

/** Answers a request for `/metrics`: the exposition, to a scraper with the token when one is set. */
async function serveExposition(metrics: Metrics, token: string | undefined, request: IncomingMessage, response: ServerResponse) {
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    return answerJson(response, 405, 'method_not_allowed', 'Use GET', { Allow: 'GET, HEAD' });
  }
  if (token !== undefined && !presents(request, token)) {
    return answerJson(response, 401, 'unauthorized', 'Send Authorization: Bearer <METRICS_TOKEN>', { 'WWW-Authenticate': 'Bearer' });
  }
  const body = await metrics.exposition();
  response.writeHead(200, { 'Content-Type': metrics.contentType, 'Cache-Control': 'no-store' });
  response.end(request.method === 'HEAD' ? undefined : body);
}

const pathOf = (request: IncomingMessage) => (request.url ?? '').split('?')[0];

/**
 * `/metrics` on the service's own port, when METRICS_TOKEN is set and METRICS_PORT is not. Ahead
 * of the routes, like the other documents that are not part of the JSON API.
 */
export function serveMetrics(app: NestExpressApplication): void {
  const config = app.get(AppConfig);
  const token = config.get('METRICS_TOKEN');
  if (token === undefined || config.get('METRICS_PORT') !== undefined) return;
  const metrics = app.get(Metrics);
  app.use((request: IncomingMessage, response: ServerResponse, next: (error?: unknown) => void) => {
    if (pathOf(request) !== METRICS_ROUTE) return next();
    serveExposition(metrics, token, request, response).catch(next);
  });
}

/**
 * `/metrics` on a port of its own (METRICS_PORT, bound to METRICS_HOST, 127.0.0.1 by default), for
 * a scraper on the same host or network namespace; METRICS_TOKEN, when set, is required there too.
 */
@Injectable()
export class MetricsServer implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(MetricsServer.name);
  private server?: Server;

  constructor(
    private readonly metrics: Metrics,
    private readonly config: AppConfig,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    const port = this.config.get('METRICS_PORT');
    if (port === undefined) return;
    const token = this.config.get('METRICS_TOKEN');
    const server = createServer((request, response) => {
      if (pathOf(request) !== METRICS_ROUTE) return answerJson(response, 404, 'not_found', `Metrics are at ${METRICS_ROUTE}`);
      serveExposition(this.metrics, token, request, response).catch((error: Error) => {
        this.logger.error(`Metrics exposition failed: ${error.message}`);
        if (!response.headersSent) answerJson(response, 500, 'internal_error', 'The metrics could not be collected');
        else response.destroy();
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, this.config.get('METRICS_HOST'), () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
    const { address, port: bound } = server.address() as AddressInfo;
    this.logger.log(`Prometheus metrics on http://${address}:${bound}${METRICS_ROUTE}`);
  }

  /** The port it listens on (METRICS_PORT=0 picks a free one), or undefined when it is off. */
  get port(): number | undefined {
    return (this.server?.address() as AddressInfo | null)?.port;
  }

  async onApplicationShutdown(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
