import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { frameText, unsentBytes, writeFramed } from './framed-message.js';

/** A real server-side socket and its client, on localhost. */
async function socketPair() {
  const server = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: false });
  await once(server, 'listening');
  const client = new WebSocket(`ws://127.0.0.1:${(server.address() as AddressInfo).port}`, { perMessageDeflate: false });
  const [serverSide] = (await once(server, 'connection')) as [WebSocket];
  await once(client, 'open');
  const received: string[] = [];
  client.on('message', (data) => received.push(data.toString()));
  const net = (serverSide as unknown as { _socket: { _write: () => void; _writev: () => void } })._socket;
  return { server, client, serverSide, received, writes: vi.spyOn(net, '_write'), writevs: vi.spyOn(net, '_writev') };
}

const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

describe('writeFramed', () => {
  const cleanups: (() => void)[] = [];
  afterEach(() => cleanups.splice(0).forEach((cleanup) => cleanup()));

  it('writes a lone frame at once, and a burst in one turn as that frame plus one writev, in order', async () => {
    const pair = await socketPair();
    cleanups.push(() => (pair.client.terminate(), pair.server.close()));

    writeFramed(pair.serverSide, frameText('{"n":1}'));
    expect(pair.writes).toHaveBeenCalledTimes(1);
    await nextTurn();

    for (let n = 2; n <= 5; n++) writeFramed(pair.serverSide, frameText(`{"n":${n}}`));
    expect(unsentBytes(pair.serverSide)).toBe(0); // what waits behind this turn's cork is not "unsent"
    await nextTurn();
    expect(pair.writes).toHaveBeenCalledTimes(2);
    expect(pair.writevs).toHaveBeenCalledTimes(1);

    await vi.waitFor(() => expect(pair.received).toHaveLength(5));
    expect(pair.received.map((text) => JSON.parse(text).n)).toEqual([1, 2, 3, 4, 5]);
  });

  it('holds even the first frame when more are known to follow, so the burst leaves as one writev', async () => {
    const pair = await socketPair();
    cleanups.push(() => (pair.client.terminate(), pair.server.close()));

    for (let n = 1; n <= 3; n++) writeFramed(pair.serverSide, frameText(`{"n":${n}}`), true);
    writeFramed(pair.serverSide, frameText('{"n":4}'));
    expect(pair.writes).not.toHaveBeenCalled();
    expect(unsentBytes(pair.serverSide)).toBe(0);
    await nextTurn();
    expect(pair.writes).not.toHaveBeenCalled();
    expect(pair.writevs).toHaveBeenCalledTimes(1);

    await vi.waitFor(() => expect(pair.received).toHaveLength(4));
    expect(pair.received.map((text) => JSON.parse(text).n)).toEqual([1, 2, 3, 4]);
  });
});
