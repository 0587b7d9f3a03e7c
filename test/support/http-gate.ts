import http from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';

/**
 * An HTTP reverse proxy on 127.0.0.1 to a real server, for fault injection one level above
 * `startTcpProxy`: the server keeps running and healthy, only what goes through the gate is
 * answered otherwise. `refuseUpgrades(true)` answers WebSocket upgrades 403 (as an auth proxy or
 * a revoked key would); `failRequests(503, 2)` answers plain requests 503 with `Retry-After: 2`
 * (as a server without its database would), optionally only under a path prefix. Everything else
 * is forwarded as-is, upgrades as raw bytes. `upgradesSeen` / `requestsSeen` count what arrived,
 * so that a test can tell how often a client tried (retries, backoff).
 */
export async function startHttpGate(targetPort: number, targetHost = '127.0.0.1') {
  const sockets = new Set<Duplex>();
  const track = (socket: Duplex) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    // A peer that goes away is expected here; the other side is destroyed by its 'close'.
    socket.on('error', () => undefined);
  };
  let refusing = false;
  let failure: { status: number; retryAfterSeconds?: number; pathPrefix: string } | null = null;
  let upgrades = 0;
  let requests = 0;

  const answerJson = (res: http.ServerResponse, status: number, body: object, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify(body));
  };

  const server = http.createServer((req, res) => {
    requests++;
    if (failure && (req.url ?? '/').startsWith(failure.pathPrefix)) {
      req.resume();
      const body =
        failure.status === 503
          ? { code: 'database_unavailable', message: 'gate: failing requests' }
          : { code: 'gate', message: `gate: failing requests with ${failure.status}` };
      const retryAfter = failure.retryAfterSeconds;
      return answerJson(res, failure.status, body, retryAfter === undefined ? {} : { 'retry-after': String(retryAfter) });
    }
    // One connection per request (agent: false), so that nothing of the gate's outlives a request;
    // hop-by-hop headers stay on their own hop.
    const headers = { ...req.headers };
    delete headers.connection;
    delete headers['keep-alive'];
    const upstream = http.request(
      { host: targetHost, port: targetPort, method: req.method, path: req.url, headers, agent: false },
      (answer) => {
        const raw: string[] = [];
        for (let i = 0; i < answer.rawHeaders.length; i += 2) {
          const name = answer.rawHeaders[i]!;
          if (/^(connection|keep-alive)$/i.test(name)) continue;
          raw.push(name, answer.rawHeaders[i + 1]!);
        }
        res.writeHead(answer.statusCode ?? 502, answer.statusMessage, raw);
        answer.on('error', () => res.destroy());
        answer.pipe(res);
      },
    );
    upstream.on('socket', track);
    upstream.on('error', (error) => {
      if (res.headersSent) return res.destroy();
      answerJson(res, 502, { code: 'bad_gateway', message: `gate: target unreachable (${error.message})` });
    });
    // The client went away before the answer was complete: so does the forwarded request.
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    req.on('error', () => upstream.destroy());
    req.pipe(upstream);
  });
  server.on('connection', track);

  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    upgrades++;
    if (refusing) {
      socket.end(
        'HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n' +
          '{"code":"forbidden","message":"gate: upgrades refused"}',
      );
      return;
    }
    const target = net.connect(targetPort, targetHost);
    track(target);
    // The request as it came (the parser decoded header bytes as Latin-1: written back as such).
    let text = `${req.method} ${req.url} HTTP/${req.httpVersion}\r\n`;
    for (let i = 0; i < req.rawHeaders.length; i += 2) text += `${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}\r\n`;
    target.write(Buffer.concat([Buffer.from(`${text}\r\n`, 'latin1'), head]));
    target.pipe(socket);
    socket.pipe(target);
    target.on('close', () => socket.destroy());
    socket.on('close', () => target.destroy());
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    port,
    baseUrl: `http://127.0.0.1:${port}`,
    /** While on, every WebSocket upgrade is answered 403 (JSON body) and its socket ended. */
    refuseUpgrades(on: boolean): void {
      refusing = on;
    },
    /**
     * Answers plain requests whose path starts with `pathPrefix` (default: all) with `status`
     * instead of forwarding them (503: the service's `database_unavailable` body); `null` forwards again.
     */
    failRequests(status: number | null, retryAfterSeconds?: number, pathPrefix = ''): void {
      failure = status === null ? null : { status, retryAfterSeconds, pathPrefix };
    },
    /** WebSocket upgrade attempts received (refused ones included). */
    get upgradesSeen(): number {
      return upgrades;
    },
    /** Plain HTTP requests received (failed ones included). */
    get requestsSeen(): number {
      return requests;
    },
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
