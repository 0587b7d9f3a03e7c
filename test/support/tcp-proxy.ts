import net from 'node:net';

/**
 * A TCP proxy on 127.0.0.1 to a real server, for fault injection: `cut()` drops every connection
 * and refuses new ones (the server looks down to whoever goes through the proxy), `restore()`
 * accepts again; `lag(ms)` holds what the server sends back that long (the connection stays up,
 * only late). Only this test's clients are affected; the real server keeps running.
 */
export async function startTcpProxy(targetPort: number, targetHost = '127.0.0.1') {
  const sockets = new Set<net.Socket>();
  let up = true;
  let lagMs = 0;
  const server = net.createServer((client) => {
    if (!up) return client.destroy();
    const upstream = net.connect(targetPort, targetHost);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => undefined);
    }
    client.pipe(upstream);
    upstream.on('data', (chunk: Buffer) => (lagMs > 0 ? setTimeout(() => client.write(chunk), lagMs) : client.write(chunk)));
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    port,
    cut(): void {
      up = false;
      for (const socket of sockets) socket.destroy();
    },
    restore(): void {
      up = true;
    },
    lag(ms: number): void {
      lagMs = ms;
    },
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
