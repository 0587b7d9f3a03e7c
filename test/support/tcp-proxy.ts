import net from 'node:net';

/**
 * A TCP proxy on 127.0.0.1 to a real server, for fault injection: `cut()` drops every connection
 * and refuses new ones (the server looks down to whoever goes through the proxy), `restore()`
 * accepts again; `lag(ms)` holds what the server sends back that long (the connection stays up,
 * only late). `pause()` stops reading what the server sends (on every connection, and on new ones
 * until `resume()`): the client looks like a slow consumer that has stopped reading, so the
 * proxy's receive buffer, then the server's kernel send buffer, then its WebSocket
 * `bufferedAmount` fill up (a few MB go into the kernel buffers before `bufferedAmount` grows).
 * `resume()` reads again; what the server queued meanwhile (e.g. a 4008 close frame) then arrives.
 * Only this test's clients are affected; the real server keeps running.
 */
export async function startTcpProxy(targetPort: number, targetHost = '127.0.0.1') {
  const sockets = new Set<net.Socket>();
  const upstreams = new Set<net.Socket>();
  let up = true;
  let lagMs = 0;
  let paused = false;
  const server = net.createServer((client) => {
    if (!up) return client.destroy();
    const upstream = net.connect(targetPort, targetHost);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => undefined);
    }
    upstreams.add(upstream);
    upstream.on('close', () => upstreams.delete(upstream));
    client.pipe(upstream);
    // In order, whatever the lag: a chunk is never written before one that arrived earlier (TCP does
    // not reorder, and a lowered lag must not either). One queue per connection, drained in order.
    const queue: { due: number; chunk: Buffer }[] = [];
    let timer: ReturnType<typeof setTimeout> | undefined;
    const drain = () => {
      timer = undefined;
      const now = Date.now();
      while (queue.length > 0 && queue[0]!.due <= now) client.write(queue.shift()!.chunk);
      if (queue.length > 0) timer = setTimeout(drain, queue[0]!.due - now);
    };
    upstream.on('data', (chunk: Buffer) => {
      const now = Date.now();
      if (queue.length === 0 && lagMs <= 0) return void client.write(chunk);
      queue.push({ due: Math.max(now + lagMs, queue.at(-1)?.due ?? 0), chunk });
      timer ??= setTimeout(drain, Math.max(0, queue[0]!.due - now));
    });
    // After the 'data' listener: an explicitly paused stream stays paused when one is added.
    if (paused) upstream.pause();
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
    pause(): void {
      paused = true;
      for (const upstream of upstreams) upstream.pause();
    },
    resume(): void {
      paused = false;
      for (const upstream of upstreams) upstream.resume();
    },
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
