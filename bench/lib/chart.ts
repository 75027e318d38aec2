/** A hand-built SVG of the run's figures: rates against their baselines, and the e2e load curve. */
import type { Results } from './results.js';

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');

export function chart(r: Results): string {
  const W = 900;
  const out: string[] = [];
  const text = (x: number, y: number, s: string, o = '') => out.push(`<text x="${x}" y="${y}" ${o}>${esc(s)}</text>`);
  // Panel 1: horizontal bars, log-free (each group scaled to its own baseline).
  const bars: Array<{ label: string; v: number; base: number; color: string }> = [];
  if (r.broker) {
    const b = r.broker;
    bars.push({ label: 'bare JetStream publish (msg/s)', v: b.publishPerSec, base: b.consumeAckPerSec, color: '#888' });
    bars.push({ label: 'bare pull consume+ack (msg/s)', v: b.consumeAckPerSec, base: b.consumeAckPerSec, color: '#888' });
    bars.push({ label: 'kit EventConsumer no-op, Postgres', v: b.kitNoopPostgresPerSec, base: b.consumeAckPerSec, color: '#3b7dd8' });
    bars.push({ label: 'kit EventConsumer no-op, PGlite', v: b.kitNoopPglitePerSec, base: b.consumeAckPerSec, color: '#7aa9e8' });
    bars.push({ label: 'inventory-service orders.created', v: b.inventoryHandlerPerSec, base: b.consumeAckPerSec, color: '#d8843b' });
  }
  if (r.http) {
    const h = r.http;
    bars.push({ label: 'bare Hono POST echo (req/s)', v: h.bareHono.reqPerSec, base: h.bareHono.reqPerSec, color: '#888' });
    bars.push({ label: 'POST /orders, Postgres', v: h.ordersPostgres.reqPerSec, base: h.bareHono.reqPerSec, color: '#3b7dd8' });
    bars.push({ label: 'POST /orders, PGlite', v: h.ordersPglite.reqPerSec, base: h.bareHono.reqPerSec, color: '#7aa9e8' });
  }
  const max = Math.max(1, ...bars.map((b) => Math.max(b.v, b.base)));
  let y = 40;
  text(
    20,
    24,
    `orderflow bench ${r.startedAt} (${r.quick ? 'quick' : 'full'}), ${r.machine.cpus} CPUs — rates (bar length: same scale)`,
    'font-weight="bold"',
  );
  for (const b of bars) {
    const w = (560 * b.v) / max;
    out.push(`<rect x="300" y="${y - 12}" width="${w.toFixed(1)}" height="14" fill="${b.color}"/>`);
    text(20, y, b.label);
    text(305 + w, y, `${Math.round(b.v)} (${Math.round((100 * b.v) / b.base)}%)`);
    y += 20;
  }
  // Panel 2: e2e achieved vs offered (line per backend) with p99 labels.
  const top = y + 30;
  const H = 260;
  const series = (r.e2e ?? []).filter((e) => e.steps.length);
  const xMax = Math.max(100, ...series.flatMap((e) => e.steps.map((s) => s.offeredPerSec)));
  const px = (v: number) => 80 + (700 * v) / xMax;
  const py = (v: number) => top + H - (H * v) / xMax;
  text(20, top - 10, 'End-to-end: achieved orders/s vs offered (label: p99 accepted→confirmed, ms)', 'font-weight="bold"');
  out.push(
    `<line x1="80" y1="${top + H}" x2="${px(xMax)}" y2="${top + H}" stroke="#000"/><line x1="80" y1="${top}" ` +
      `x2="80" y2="${top + H}" stroke="#000"/>`,
  );
  out.push(`<line x1="${px(0)}" y1="${py(0)}" x2="${px(xMax)}" y2="${py(xMax)}" stroke="#ccc" stroke-dasharray="4"/>`);
  for (const t of [0, 0.25, 0.5, 0.75, 1].map((f) => Math.round(f * xMax))) {
    text(px(t) - 10, top + H + 16, String(t));
    text(40, py(t) + 4, String(t));
  }
  const colors = { postgres: '#3b7dd8', pglite: '#d8843b' } as const;
  series.forEach((e, i) => {
    const pts = e.steps.map((s) => `${px(s.offeredPerSec).toFixed(1)},${py(s.achievedPerSec).toFixed(1)}`).join(' ');
    out.push(`<polyline points="${pts}" fill="none" stroke="${colors[e.backend]}" stroke-width="2"/>`);
    for (const s of e.steps) {
      out.push(
        `<circle cx="${px(s.offeredPerSec).toFixed(1)}" cy="${py(s.achievedPerSec).toFixed(1)}" r="3" fill="${colors[e.backend]}"/>`,
      );
      text(px(s.offeredPerSec) + 5, py(s.achievedPerSec) - 5, `${Math.round(s.p99Ms)}`, `font-size="10" fill="${colors[e.backend]}"`);
    }
    text(
      620,
      top + 20 + 16 * i,
      `${e.backend}: sustained ${e.sustainedPerSec}/s, peak ${e.peakAchievedPerSec}/s`,
      `fill="${colors[e.backend]}"`,
    );
  });
  const height = top + H + 40;
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${height}" font-family="sans-serif" ` +
    `font-size="12"><rect width="100%" height="100%" fill="#fff"/>${out.join('')}</svg>\n`
  );
}
