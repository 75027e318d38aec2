import { expect, test } from 'vitest';
import { headers as natsHeaders } from '@nats-io/nats-core';
import { headerView } from '../src/events/header-view.js';

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
