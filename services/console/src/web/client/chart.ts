/// <reference lib="dom" />
/** SVG charts: orders per minute (with its data as a table) and the pending-count sparkline. */
import type { OrderStats } from '../api-types.js';
import { h, svg } from './dom.js';
import { fmtTime } from './format.js';
import { table, type Column } from './widgets.js';

type Point = OrderStats['series'][number];

const SERIES = [
  { key: 'created', label: 'Created', color: '#0b5cad' },
  { key: 'confirmed', label: 'Confirmed', color: '#1a7f37' },
  { key: 'cancelled', label: 'Cancelled', color: '#b42318' },
] as const;

const W = 640;
const H = 180;
const PAD = { l: 36, r: 8, t: 10, b: 24 };
const AXIS = { 'font-size': 11, fill: '#59636e' };
const minute = (p: Point) => fmtTime(p.at).slice(0, 5);

function describe(series: Point[]): string {
  const total = (k: 'created' | 'confirmed' | 'cancelled') => series.reduce((n, p) => n + p[k], 0);
  return (
    `Orders per minute over the last ${series.length} minutes: ${total('created')} created, ` +
    `${total('confirmed')} confirmed, ${total('cancelled')} cancelled.`
  );
}

function dataTable(series: Point[]): HTMLElement {
  const num = (n: number) => h('td', { class: 'num' }, n);
  const row = (p: Point) => h('tr', {}, h('td', {}, minute(p)), num(p.created), num(p.confirmed), num(p.cancelled));
  const head: Column[] = ['Minute', ['Created', 'num'], ['Confirmed', 'num'], ['Cancelled', 'num']];
  return h('details', {}, h('summary', {}, 'Data table'), table('Orders per minute', head, series.map(row)));
}

/** Created / confirmed / cancelled per minute, with a legend and the numbers as a table. */
export function ordersChart(series: Point[]): Node {
  const max = Math.max(1, ...series.flatMap((p) => [p.created, p.confirmed, p.cancelled]));
  const x = (i: number) => PAD.l + (series.length <= 1 ? 0 : (i * (W - PAD.l - PAD.r)) / (series.length - 1));
  const y = (v: number) => H - PAD.b - (v * (H - PAD.t - PAD.b)) / max;
  const g: Node[] = [];
  for (const t of [0, 0.5, 1]) {
    const v = Math.round(max * t);
    g.push(svg('line', { x1: PAD.l, x2: W - PAD.r, y1: y(v), y2: y(v), stroke: '#e3e7ec' }));
    g.push(svg('text', { x: PAD.l - 6, y: y(v) + 4, 'text-anchor': 'end', ...AXIS }, String(v)));
  }
  const last = series.length - 1;
  series.forEach((p, i) => {
    if (i % 3 !== 0 && i !== last) return;
    const anchor = i === last ? 'end' : i === 0 ? 'start' : 'middle';
    g.push(svg('text', { x: x(i), y: H - 6, 'text-anchor': anchor, ...AXIS }, minute(p)));
  });
  for (const s of SERIES) {
    const pts = series.map((p, i) => `${x(i).toFixed(1)},${y(p[s.key]).toFixed(1)}`).join(' ');
    g.push(svg('polyline', { points: pts, fill: 'none', stroke: s.color, 'stroke-width': 2 }));
    series.forEach((p, i) => g.push(svg('circle', { cx: x(i), cy: y(p[s.key]), r: 2.5, fill: s.color })));
  }
  const desc = describe(series);
  const el = svg('svg', { viewBox: `0 0 ${W} ${H}`, width: '100%', role: 'img', 'aria-label': desc }, svg('title', {}, desc), ...g);
  const swatch = (color: string) => h('span', { class: 'sw', style: `background:${color}` });
  const legend = h('div', { class: 'legend', 'aria-hidden': 'true' }, ...SERIES.map((s) => h('span', {}, swatch(s.color), s.label)));
  return h('div', {}, legend, el, dataTable(series));
}

/** A small line of recent values (decorative: the numbers are in the table next to it). */
export function sparkline(values: number[]): Node {
  if (values.length < 2) return h('span', {});
  const max = Math.max(1, ...values);
  const pts = values.map((v, i) => `${((i * 60) / (values.length - 1)).toFixed(1)},${(16 - (v * 14) / max).toFixed(1)}`).join(' ');
  const line = svg('polyline', { points: pts, fill: 'none', stroke: '#59636e', 'stroke-width': 1.5 });
  return svg('svg', { width: 60, height: 18, 'aria-hidden': 'true' }, line);
}
