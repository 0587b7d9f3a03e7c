import net from 'node:net';

/**
 * Sends PING over a raw TCP connection and resolves to the first reply (`+PONG`, `-NOAUTH ...`),
 * or null when nothing answers in time. No other import: the vitest global setup uses it too.
 */
export function redisReply(port: number, host = '127.0.0.1', timeoutMs = 1_000): Promise<string | null> {
  return new Promise((resolve) => {
    const socket = net.connect(port, host);
    const done = (reply: string | null) => {
      socket.destroy();
      resolve(reply);
    };
    socket.setTimeout(timeoutMs, () => done(null));
    socket.once('error', () => done(null));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (data) => done(data.toString()));
  });
}
