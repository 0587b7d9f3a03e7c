/** PostgreSQL SQLSTATE classes and driver errors that mean "the database cannot be reached now". */
const UNAVAILABLE_SQLSTATE = /^(08|53|57P)/;
const UNAVAILABLE_PRISMA_CODES = new Set(['P1001', 'P1002', 'P1008', 'P1017', 'P2024', 'P2037']);
const UNAVAILABLE_NET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH']);
const UNAVAILABLE_KINDS = new Set([
  'DatabaseNotReachable',
  'ConnectionClosed',
  'SocketTimeout',
  'TooManyConnections',
  'DatabaseDoesNotExist',
  'DatabaseAccessDenied',
]);
const UNAVAILABLE_MESSAGE =
  /Connection terminated|connection timeout|terminating connection|Can't reach database|Server has closed the connection|Client has encountered a connection error|the database system is (starting up|shutting down)|too many clients|PGlite is closed|not currently accepting connections/i;

/** Walks an error and its causes looking for a sign that the database is down or unreachable. */
export function isDatabaseUnavailable(error: unknown): boolean {
  for (let current = error, depth = 0; current && depth < 6; depth++) {
    if (typeof current !== 'object') return false;
    const e = current as { code?: unknown; kind?: unknown; message?: unknown; cause?: unknown; originalCode?: unknown };
    if (
      typeof e.code === 'string' &&
      (UNAVAILABLE_PRISMA_CODES.has(e.code) || UNAVAILABLE_NET_CODES.has(e.code) || UNAVAILABLE_SQLSTATE.test(e.code))
    )
      return true;
    if (typeof e.originalCode === 'string' && UNAVAILABLE_SQLSTATE.test(e.originalCode)) return true;
    if (typeof e.kind === 'string' && UNAVAILABLE_KINDS.has(e.kind)) return true;
    if (typeof e.message === 'string' && UNAVAILABLE_MESSAGE.test(e.message)) return true;
    current = e.cause;
  }
  return false;
}
