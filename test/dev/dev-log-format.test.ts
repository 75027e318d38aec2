import { describe, expect, it } from 'vitest';
// @ts-expect-error -- a plain .mjs script without type declarations
import { createLineFormatter, wantsPretty } from '../../scripts/dev-log-format.mjs';

type Format = (name: string, line: string) => string;

describe('npm run dev log format', () => {
  it('a service JSON line becomes one readable line prefixed by the service, fields kept', () => {
    const f = (createLineFormatter as (o: { colour: boolean }) => Format)({ colour: false });
    const line = JSON.stringify({
      level: 'warn',
      time: '2026-12-01T03:33:36.044Z',
      service: 'payment-service',
      msg: 'payment.in_doubt',
      orderId: 'o-1',
    });
    const out = f('payment-service', line);
    expect(out).toBe('payment-service │ [03:33:36.044] WARN: payment.in_doubt {"orderId":"o-1"}\n');
    expect(out.split('\n')).toHaveLength(2);
  });

  it('a line that is not JSON is shown as it is, prefixes aligned to the longest name seen', () => {
    const f = (createLineFormatter as (o: { colour: boolean }) => Format)({ colour: false });
    f('inventory-service', '{"level":"info","time":"2026-12-01T00:00:00.000Z","msg":"x"}');
    expect(f('nats', '[42] server is ready')).toBe('nats              │ [42] server is ready\n');
  });

  it('colours by service on a terminal', () => {
    const f = (createLineFormatter as (o: { colour: boolean }) => Format)({ colour: true });
    const a = f('order-service', 'a');
    const b = f('inventory-service', 'b');
    expect(a.slice(0, 5)).not.toBe(b.slice(0, 5));
    expect(a).toContain('\u001b[');
  });

  it('pretty on a terminal, JSON for pipes and CI, DEV_LOG_FORMAT overrides', () => {
    const w = wantsPretty as (env: Record<string, string>, s: { isTTY?: boolean }) => boolean;
    expect(w({}, { isTTY: true })).toBe(true);
    expect(w({}, { isTTY: false })).toBe(false);
    expect(w({ DEV_LOG_FORMAT: 'json' }, { isTTY: true })).toBe(false);
    expect(w({ DEV_LOG_FORMAT: 'pretty' }, {})).toBe(true);
  });
});
