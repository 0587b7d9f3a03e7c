import type { Signal, WebSocketLike } from '../src/index.js';

/** A scripted WebSocket: the test plays the server (`receive`, `drop`) and reads what was sent. */
export class FakeSocket implements WebSocketLike {
  static all: FakeSocket[] = [];
  static get last(): FakeSocket {
    return FakeSocket.all.at(-1)!;
  }

  readyState = 1;
  readonly sent: Record<string, unknown>[] = [];
  onmessage: WebSocketLike['onmessage'] = null;
  onclose: WebSocketLike['onclose'] = null;
  onerror: WebSocketLike['onerror'] = null;
  closedWith?: number;

  constructor(readonly url: string) {
    FakeSocket.all.push(this);
  }

  get query(): URLSearchParams {
    return new URL(this.url).searchParams;
  }

  send(data: string): void {
    this.sent.push(JSON.parse(data));
  }

  close(code = 1000): void {
    this.closedWith ??= code;
    this.readyState = 3;
  }

  receive(message: Record<string, unknown>): void {
    this.onmessage?.({ data: JSON.stringify(message) });
  }

  welcome(latestSeq: number): void {
    this.receive({
      type: 'welcome',
      user_id: 'u1',
      tier: 'elite',
      server_time: new Date(0).toISOString(),
      latest_seq: latestSeq,
      token_expires_at: null,
    });
  }

  drop(code: number, reason = ''): void {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }
}

export function signal(seq: number, id = `s${seq}`, version = 1): Signal {
  return {
    id,
    seq,
    provider: 'p1',
    external_id: id,
    symbol: 'BTCUSDT',
    market: 'crypto',
    side: 'long',
    entry: '1',
    stop_loss: null,
    take_profits: [],
    confidence: 50,
    timeframe: '1h',
    note: null,
    premium: false,
    status: 'active',
    version,
    issued_at: new Date(0).toISOString(),
    received_at: new Date(0).toISOString(),
    expires_at: null,
  };
}
