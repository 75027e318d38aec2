/// <reference lib="dom" />
/** Overview: orders by state, latency, saga outcomes and cancel reasons, platform health, chart. */
import type { OrderStats, Overview } from '../../api-types.js';
import { api } from '../api.js';
import { ordersChart } from '../chart.js';
import { $, h, render } from '../dom.js';
import { fmtInt, fmtSecs } from '../format.js';
import { setDlqCount, statusBadge, table } from '../widgets.js';

const STATUSES = ['pending', 'reserved', 'paid', 'confirmed', 'cancelled'];

function countsTable(caption: string, counts: Record<string, number>, label: string, testid: string): Node {
  const entries = Object.entries(counts).sort((a, b) => b[1] - a[1]);
  if (!entries.length) return h('p', { class: 'muted' }, 'none');
  const row = ([k, v]: [string, number]) =>
    h('tr', { 'data-testid': `${testid}-${k}` }, h('td', {}, k), h('td', { class: 'num' }, fmtInt(v)));
  return table(caption, [label, ['Orders', 'num']], entries.map(row));
}

function byState(stats: OrderStats | undefined): Node {
  const row = (s: string, st: OrderStats) =>
    h(
      'tr',
      { 'data-testid': `status-${s}` },
      h('td', {}, statusBadge(s)),
      h('td', { class: 'num' }, fmtInt(st.windowByStatus[s] ?? 0)),
      h('td', { class: 'num' }, fmtInt(st.byStatus[s] ?? 0)),
    );
  return h(
    'div',
    { class: 'card', 'data-testid': 'orders-by-status' },
    h('h3', {}, `Orders by state (last ${stats?.windowMinutes ?? '?'} min)`),
    stats
      ? table(
          'Orders by state',
          ['State', ['Last minutes', 'num'], ['All', 'num']],
          STATUSES.map((s) => row(s, stats)),
        )
      : h('p', { class: 'muted' }, 'order-service unavailable'),
  );
}

function latency(o: Overview): Node {
  const lat = o.saga?.latency;
  const window = lat?.windowSeconds ? `last ${Math.round(lat.windowSeconds / 60)} min` : 'since order-service started';
  return h(
    'div',
    { class: 'card', 'data-testid': 'latency' },
    h('h3', {}, 'Accepted → confirmed'),
    h('p', {}, h('span', { class: 'big' }, fmtSecs(lat?.p50)), ' p50'),
    h('p', {}, h('span', { class: 'big' }, fmtSecs(lat?.p99)), ' p99'),
    h('p', { class: 'muted' }, lat ? `${fmtInt(lat.count)} orders, ${window} (order-service histogram)` : 'no metrics yet'),
  );
}

function outcomes(o: Overview): Node {
  const saga = o.saga;
  return h(
    'div',
    { class: 'card', 'data-testid': 'cancel-reasons' },
    h('h3', {}, 'Saga outcomes'),
    saga
      ? h(
          'p',
          {},
          statusBadge('confirmed'),
          ' ',
          fmtInt(saga.outcomes.confirmed ?? 0),
          '  ',
          statusBadge('cancelled'),
          ' ',
          fmtInt(saga.outcomes.cancelled ?? 0),
          h('span', { class: 'muted' }, ' since order-service started'),
        )
      : '',
    h('h3', {}, 'Cancelled by reason'),
    countsTable('Cancelled orders by reason', o.orders?.cancelReasons ?? saga?.cancelReasons ?? {}, 'Reason', 'reason'),
  );
}

function platform(o: Overview): Node {
  const badge = (ok: boolean, yes: string, no: string, title?: string) =>
    ok ? h('span', { class: 'badge b-ok' }, yes) : h('span', { class: 'badge b-bad', title }, no);
  const service = (s: Overview['services'][number]) => {
    const detail = s.detail ? h('span', { class: 'muted' }, ` ${s.detail}`) : '';
    return h('li', {}, `${s.name} `, badge(s.ready, 'ready', 'not ready', s.detail ?? ''), detail);
  };
  return h(
    'div',
    { class: 'card' },
    h('h3', {}, 'Platform'),
    h('ul', {}, h('li', {}, 'NATS ', badge(o.nats.connected, 'connected', 'disconnected')), ...o.services.map(service)),
    h('p', { 'data-testid': 'dlq-total' }, h('a', { href: '#dlq' }, 'Dead letters'), ': ', h('strong', {}, fmtInt(o.deadLetters))),
    o.growingConsumers.length
      ? h('p', { class: 'msg warn' }, 'Pending keeps growing: ', o.growingConsumers.join(', '))
      : h('p', { class: 'muted' }, 'No consumer is falling behind.'),
  );
}

export async function loadOverview(): Promise<void> {
  const o = await api<Overview>('/overview');
  const stats = o.orders;
  const cards: Node[] = [];
  if (o.errors.length) cards.push(h('div', { class: 'card wide msg warn' }, ...o.errors.map((e) => h('p', {}, e))));
  cards.push(byState(stats), latency(o), outcomes(o), platform(o));
  if (stats) {
    const title = h('h3', {}, `Orders per minute (last ${stats.windowMinutes} min)`);
    cards.push(h('div', { class: 'card wide' }, title, ordersChart(stats.series)));
  }
  render($('overview-body'), h('div', { class: 'grid' }, ...cards));
  setDlqCount(o.deadLetters);
}
