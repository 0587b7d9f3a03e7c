import { describe, expect, it } from 'vitest';
import { parseClientFrame, parseReceiptFrame } from './ws-messages.js';

const frames = [
  '{"type":"received","seq":1}',
  '{"type":"received","seq":0}',
  '{"type":"received","seq":9007199254740991}',
  '{"type":"received","seq":123456789012345}',
  '{"type":"received","seq":42,"held_ms":180}',
  '{"type":"received","seq":42,"held_ms":0}',
  '{"type":"received","seq":42,"held_ms":60000}',
  '{"type":"received","seq":42,"held_ms":60001}',
  '{"type":"received","seq":42,"held_ms":-1}',
  '{"type":"received","seq":012}',
  '{"type":"received","seq":-1}',
  '{"type":"received","seq":1.5}',
  '{"type":"received","seq":1e3}',
  '{"type":"received","seq":"3"}',
  '{"type":"received","seq":}',
  '{"type":"received","seq":3',
  '{"type":"received","seq":3}}',
  '{"type":"received","seq":3} ',
  '{"type":"received","seq":3,"id":"a"}',
  '{"type":"received","seq":3,"held_ms":5,"x":1}',
  '{"seq":3,"type":"received"}',
  '{ "type": "received", "seq": 3 }',
  '{"type":"receivedX","seq":3}',
];

describe('parseReceiptFrame', () => {
  it.each(frames)('reads %s as the general parser does, or leaves it to it', (text) => {
    const fast = parseReceiptFrame(Buffer.from(text));
    const general = parseClientFrame(Buffer.from(text), false);
    if (fast === undefined) return;
    expect(general).toMatchObject({ ok: true, request: { type: 'received', seq: fast.seq } });
    expect(general.ok && general.request.type === 'received' && (general.request.held_ms ?? 0)).toBe(fast.heldMs);
  });

  it('takes the SDK’s own receipts', () => {
    expect(parseReceiptFrame(Buffer.from('{"type":"received","seq":1043}'))).toEqual({ seq: 1043, heldMs: 0 });
    expect(parseReceiptFrame(Buffer.from('{"type":"received","seq":1077,"held_ms":180}'))).toEqual({ seq: 1077, heldMs: 180 });
    expect(parseReceiptFrame(Buffer.from('{"type":"received","seq":9007199254740991}'))).toBeUndefined(); // 16 digits: the general path
    expect(parseReceiptFrame(Buffer.from('{"type":"received","seq":012}'))).toBeUndefined();
  });
});
