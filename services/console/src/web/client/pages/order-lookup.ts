/// <reference lib="dom" />
/** Order lookup: by order id or correlation id, the order's states and its events across the streams. */
import type { Lookup, TimelineEvent } from '../../api-types.js';
import { api } from '../api.js';
import { $, h, render } from '../dom.js';
import { fmtTime } from '../format.js';
import { statusBadge } from '../widgets.js';

let query = '';

const DLQ_LINK = () => h('a', { href: '#dlq' }, 'open dead letters');

/** The current search (from the form or the address bar). */
export const lookupQuery = (): string => query;

export function setLookupQuery(q: string): void {
  query = q;
}

function summary(e: TimelineEvent): string {
  const data = e.data && typeof e.data === 'object' ? (e.data as Record<string, unknown>) : undefined;
  if (!data) return '';
  return ['reason', 'amount', 'status']
    .filter((k) => data[k] !== undefined)
    .map((k) => `${k}: ${String(data[k])}`)
    .join(', ');
}

function traceOf(e: TimelineEvent, jaeger: boolean): Node | string {
  if (!e.traceId) return 'no trace context';
  const text = `Trace ${e.traceId.slice(0, 12)}… in Jaeger`;
  if (e.traceUrl) return h('a', { href: e.traceUrl, target: '_blank', rel: 'noopener', 'data-testid': 'trace-link' }, text);
  return h('span', {}, 'trace ', h('code', {}, e.traceId), jaeger ? '' : ' (set JAEGER_UI_URL for links)');
}

function eventItem(e: TimelineEvent, jaeger: boolean): HTMLLIElement {
  const s = summary(e);
  const dead = e.deadLetter;
  return h(
    'li',
    { class: dead ? 'dead' : undefined, 'data-testid': `event-${e.type}` },
    h('strong', {}, e.type),
    ' ',
    h('span', { class: 'muted' }, `${fmtTime(e.time)} · ${e.stream} #${e.seq}${e.version ? ` · ${e.version}` : ''}`),
    s ? h('div', {}, s) : '',
    dead ? h('div', {}, h('span', { class: 'badge b-bad' }, 'dead letter'), ` ${dead.consumer}: ${dead.reason} `, DLQ_LINK()) : '',
    e.replayOf ? h('div', {}, h('span', { class: 'badge b-info' }, 'replayed'), ` from ${e.replayOf}`) : '',
    h('div', { class: 'muted' }, traceOf(e, jaeger)),
  );
}

function orderCard(o: Lookup['orders'][number], jaeger: boolean): HTMLElement {
  const state = (s: Lookup['orders'][number]['history'][number]) =>
    h('li', {}, statusBadge(s.status), ` ${fmtTime(s.at)}`, s.reason ? ` — ${s.reason}` : '');
  const states = h('ol', { class: 'timeline' }, ...o.history.map(state));
  const events = o.events.length
    ? h('ol', { class: 'timeline' }, ...o.events.map((e) => eventItem(e, jaeger)))
    : h('p', { class: 'muted' }, 'none found');
  const status = h('span', { 'data-testid': 'order-status' }, statusBadge(o.status));
  return h(
    'article',
    { class: 'card', 'aria-labelledby': `o-${o.orderId}`, 'data-testid': `order-${o.orderId}` },
    h('h3', { id: `o-${o.orderId}` }, 'Order ', h('code', {}, o.orderId), ' ', status),
    h(
      'p',
      { class: 'muted' },
      `customer ${o.customerId ?? '?'} · total ${o.total ?? '—'} · correlation `,
      h('code', {}, o.correlationId ?? '?'),
      o.reason ? ` · reason ${o.reason}` : '',
    ),
    h(
      'div',
      { class: 'grid' },
      h('div', {}, h('h4', {}, 'State history (order-service)'), states),
      h('div', {}, h('h4', {}, `Events in the streams (${o.events.length})`), events),
    ),
  );
}

export async function loadOrderLookup(): Promise<void> {
  if (!query) return;
  const r = await api<Lookup>(`/orders/lookup?q=${encodeURIComponent(query)}`);
  const jaeger = Boolean(r.jaegerUiUrl);
  const blocks: Node[] = [];
  if (!r.orders.length && !r.otherEvents.length) blocks.push(h('p', { class: 'msg warn' }, `No order or event found for “${r.query}”.`));
  blocks.push(...r.orders.map((o) => orderCard(o, jaeger)));
  if (r.otherEvents.length) {
    const items = r.otherEvents.map((e) => eventItem(e, jaeger));
    const title = h('h3', {}, 'Other events with this correlation id');
    blocks.push(h('section', { class: 'card' }, title, h('ol', { class: 'timeline' }, ...items)));
  }
  if (r.truncated.length) blocks.push(h('p', { class: 'muted' }, `Search stopped early in ${r.truncated.join(', ')} (busy streams).`));
  render($('lookup-body'), ...blocks);
}
