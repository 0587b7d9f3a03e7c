import type { IncomingMessage } from 'node:http';
import { readdirSync, readFileSync } from 'node:fs';
import { Injectable, Logger } from '@nestjs/common';
import { AuthService } from '../auth/auth.service.js';
import { bearerToken } from '../auth/bearer-token.js';
import type { Principal } from '../auth/principal.js';
import { throttled } from '../common/log-throttle.js';
import { decimalInteger } from '../common/wire-schemas.js';
import { AppConfig } from '../config/app-config.js';
import { Metrics } from '../metrics/metrics.js';
import type { Counter } from 'prom-client';
import { filterFromQuery, type SignalFilter } from '../signals/signal-filter.js';
import { ConnectionRegistry } from './connection-registry.js';

export type UpgradeDecision = { ok: true; principal: Principal } | { ok: false; status: 400 | 401 | 403 | 503; message: string };

interface UpgradeContext {
  principal: Principal;
  since?: number;
  filter?: SignalFilter;
}

const contexts = new WeakMap<IncomingMessage, UpgradeContext>();

/** Headroom for HTTP requests and files, on top of what is open at start and the pools. */
const DESCRIPTOR_MARGIN = 32;

/** Descriptors open now (Linux `/proc/self/fd`); 0 where unknown. */
function openDescriptors(): number {
  try {
    return readdirSync('/proc/self/fd').length;
  } catch {
    return 0;
  }
}

/** The process's soft open-files limit (Linux `/proc/self/limits`); unbounded where unknown. */
function openFilesLimit(): number {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const soft = Number(line?.split(/\s{2,}/)[1]);
    return Number.isFinite(soft) && soft > 0 ? soft : Number.POSITIVE_INFINITY;
  } catch {
    return Number.POSITIVE_INFINITY;
  }
}

/** The principal proven at upgrade time, for the connection handler. */
export function principalOf(request: IncomingMessage): Principal | undefined {
  return contexts.get(request)?.principal;
}

/** The `?since=` a client asked to resume from, if any. */
export function sinceOf(request: IncomingMessage): number | undefined {
  return contexts.get(request)?.since;
}

/** The subscription filter given on the URL, if any (applies from the first signal, replay included). */
export function filterOf(request: IncomingMessage): SignalFilter | undefined {
  return contexts.get(request)?.filter;
}

/**
 * Decides an upgrade before the socket exists: a missing or bad token, a browser origin that is
 * not allowed, a bad `since`, or a full server is refused with an HTTP status and never gets a
 * socket.
 */
@Injectable()
export class UpgradeAuthenticator {
  private readonly allowedOrigins: Set<string>;
  /** `WS_MAX_CONNECTIONS`, lowered to what the open-files limit allows. */
  private readonly maxConnections: number;
  private readonly refused: Counter<'status'>;

  private readonly logger = new Logger('Connections');
  private readonly warnAtCap = throttled(10_000, () =>
    this.logger.warn(`At the connection limit (${this.maxConnections} sockets): refusing upgrades with 503`),
  );

  constructor(
    private readonly auth: AuthService,
    private readonly registry: ConnectionRegistry,
    config: AppConfig,
    metrics: Metrics,
  ) {
    this.refused = metrics.counter('signalcast_upgrades_refused_total', 'WebSocket upgrades refused before the handshake, by HTTP status', [
      'status',
    ]);
    this.allowedOrigins = new Set(config.get('CORS_ORIGINS'));
    // Every socket is a descriptor: keep the cap under the open-files limit, with room for what
    // is open already (embedded database files, logs), the database and Redis pools, and HTTP.
    const configured = config.get('WS_MAX_CONNECTIONS');
    const reserve = openDescriptors() + config.get('DB_POOL_SIZE') + 2 + DESCRIPTOR_MARGIN;
    const limit = openFilesLimit();
    this.maxConnections = Math.min(configured, limit - reserve);
    if (this.maxConnections < configured) {
      this.logger.warn(
        `WS_MAX_CONNECTIONS=${configured} is above what the open-files limit (${limit}) allows: accepting at most ` +
          `${this.maxConnections} sockets, keeping ${reserve} descriptors for the database, Redis and HTTP. ` +
          'Raise `ulimit -n` for more.',
      );
    }
  }

  /** Whether this instance holds as many sockets as it may (checked at the upgrade, and again at registration). */
  atConnectionLimit(): boolean {
    return this.registry.connectionCount >= this.maxConnections;
  }

  authenticate(request: IncomingMessage): UpgradeDecision {
    const decision = this.decide(request);
    if (!decision.ok) this.refused.inc({ status: decision.status });
    return decision;
  }

  private decide(request: IncomingMessage): UpgradeDecision {
    if (!this.registry.accepting) return { ok: false, status: 503, message: 'Server is shutting down; reconnect elsewhere' };
    if (this.atConnectionLimit()) {
      this.warnAtCap();
      return { ok: false, status: 503, message: 'Server is at its connection limit; retry later' };
    }
    const origin = request.headers.origin;
    if (this.allowedOrigins.size > 0 && origin !== undefined && !this.allowedOrigins.has(origin)) {
      return { ok: false, status: 403, message: 'Origin not allowed' };
    }
    const url = new URL(request.url ?? '/', 'http://localhost');
    const rawSince = url.searchParams.get('since');
    const since = rawSince === null ? undefined : decimalInteger().safeParse(rawSince);
    if (since?.success === false) return { ok: false, status: 400, message: 'since must be a non-negative integer seq' };
    const { filter, error } = filterFromQuery(url.searchParams);
    if (error) return { ok: false, status: 400, message: `Invalid filter ${error.field}: ${error.message}` };
    // The Authorization header wins over `?token=` when both are given (a proxy may add the header).
    const bearer = bearerToken(request.headers.authorization);
    const token = bearer ?? (url.searchParams.get('token') || undefined);
    if (!token) return { ok: false, status: 401, message: 'Missing token (?token= or Authorization: Bearer)' };
    const principal = this.auth.authenticateToken(token);
    if (!principal) return { ok: false, status: 401, message: 'Invalid or expired token' };
    contexts.set(request, { principal, since: since?.data, filter });
    return { ok: true, principal };
  }
}
