import { describe, expect, test } from 'vitest';
import { headers as natsHeaders, type MsgHdrs, type Publisher } from '@nats-io/nats-core';
import { MsgHdrsImpl, MsgImpl } from '@nats-io/nats-core/internal';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { testNamespace, testNats } from '@orderflow/kit/testing';
import { headerView, messageHeaderView, rawHeaderBlock } from '../src/events/header-view.js';

test('headerView answers get() exactly as MsgHdrs does: first value, exact name, "" when absent', () => {
  const h = natsHeaders();
  h.set('Nats-Msg-Id', 'id-1');
  h.append('Event-Versions', 'v1,v2');
  h.append('Event-Versions', 'v3');
  h.set('X-Correlation-ID', 'corr');
  h.set('traceparent', '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01');
  const view = headerView(h)!;
  for (const k of ['Nats-Msg-Id', 'Event-Versions', 'X-Correlation-ID', 'traceparent', 'nats-msg-id', 'Event-Id', 'constructor']) {
    expect(view.get(k), k).toBe(h.get(k));
  }
  expect(view.get('Event-Versions')).toBe('v1,v2');
  expect(headerView(undefined)).toBeUndefined();
});

/** A received message as nats.js 3 builds one: a MsgImpl over the bytes off the wire (header block, then payload). */
function received(block: string | undefined, payload = '{}'): { msg: MsgImpl; readonly headers: MsgHdrs | undefined } {
  const head = block === undefined ? new Uint8Array(0) : new TextEncoder().encode(block);
  const body = new TextEncoder().encode(payload);
  const data = new Uint8Array(head.length + body.length);
  data.set(head);
  data.set(body, head.length);
  const arg = { subject: new TextEncoder().encode('s'), sid: 1, hdr: block === undefined ? -1 : head.length, size: data.length };
  const msg = new MsgImpl(arg, data, { publish: () => undefined } as unknown as Publisher);
  return {
    msg,
    get headers() {
      return msg.headers;
    },
  };
}

const NAMES = ['Nats-Msg-Id', 'nats-msg-id', 'Event-Type', 'Event-Versions', 'X-Correlation-ID', 'traceparent', 'K', '', 'constructor'];

describe('messageHeaderView reads the bytes as nats.js decodes them', () => {
  test.each([
    ['plain', 'NATS/1.0\r\nNats-Msg-Id: id-1\r\nEvent-Type: orders.created\r\nX-Correlation-ID: c\r\n\r\n'],
    ['a name twice: the first value', 'NATS/1.0\r\nEvent-Versions: v1,v2\r\nEvent-Versions: v3\r\n\r\n'],
    ['names are exact', 'NATS/1.0\r\nnats-msg-id: lower\r\nNats-Msg-Id: id\r\n\r\n'],
    ['values trimmed, colons kept', 'NATS/1.0\r\nK:   a: b \t\r\n\r\n'],
    ['an empty name and value', 'NATS/1.0\r\n: v\r\nK:\r\n\r\n'],
    ['lines without a colon and empty lines skipped', 'NATS/1.0\r\nno colon\r\n\r\nK: v\r\n\r\n'],
    ['UTF-8 values', 'NATS/1.0\r\nK: grüße ✓\r\n\r\n'],
    ['a status line', 'NATS/1.0 100 Idle Heartbeat\r\nK: v\r\n\r\n'],
    ['no header lines', 'NATS/1.0\r\n\r\n'],
  ])('%s', (_, block) => {
    const fast = messageHeaderView(received(block))!;
    const lib = headerView(MsgHdrsImpl.decode(new TextEncoder().encode(block)))!;
    for (const k of NAMES) expect(fast.get(k), k).toBe(lib.get(k));
  });

  test.each([
    ['a name nats.js rejects', 'NATS/1.0\r\nBad Name: v\r\n\r\n'],
    ['a lone line feed in a value', 'NATS/1.0\r\nK: a\nb\r\n\r\n'],
  ])('%s: the same error as nats.js', (_, block) => {
    const lib = (() => {
      try {
        return MsgHdrsImpl.decode(new TextEncoder().encode(block));
      } catch (err) {
        return err;
      }
    })();
    expect(lib).toBeInstanceOf(Error);
    expect(() => messageHeaderView(received(block))).toThrow((lib as Error).message);
  });

  test('no header block: undefined, as msg.headers', () => {
    expect(rawHeaderBlock(received(undefined))).toBeNull();
    expect(messageHeaderView(received(undefined))).toBeUndefined();
  });

  test('a message of another shape is read through msg.headers', () => {
    const h = natsHeaders();
    h.set('K', 'v');
    const other = { headers: h };
    expect(rawHeaderBlock(other)).toBeUndefined();
    expect(messageHeaderView(other)!.get('K')).toBe('v');
  });
});

test('a JetStream message from the server is read from its bytes, with the same answers', async () => {
  const nc = await testNats();
  const jsm = await jetstreamManager(nc);
  const ns = testNamespace();
  const stream = `${ns.toUpperCase()}_HDR`;
  try {
    await jsm.streams.add({ name: stream, subjects: [`${ns}.hdr`] });
    const h = natsHeaders();
    h.set('Nats-Msg-Id', 'id-1');
    h.set('Event-Type', 'orders.created');
    h.append('Event-Versions', 'v1');
    h.append('Event-Versions', 'v2');
    await jetstream(nc).publish(`${ns}.hdr`, '{}', { headers: h });
    const msg = await (await jetstream(nc).consumers.get(stream)).next({ expires: 5_000 });
    expect(msg).not.toBeNull();
    // The fast path, checked before msg.headers is read (reading it caches a MsgHdrs).
    expect(rawHeaderBlock(msg!)).toBeInstanceOf(Uint8Array);
    const fast = messageHeaderView(msg!)!;
    const lib = headerView(msg!.headers)!;
    for (const k of NAMES) expect(fast.get(k), k).toBe(lib.get(k));
    expect(fast.get('Event-Versions')).toBe('v1');
  } finally {
    await jsm.streams.delete(stream).catch(() => undefined);
    await nc.close();
  }
});
