/// <reference lib="dom" />
/**
 * The console's browser client: hash-routed pages, polled every 2 s (paused while the tab is
 * hidden), DOM built with createElement (no HTML from data), token in sessionStorage.
 */

import type { DeadLetterGroup, DeadLetterView, DlqResponse, Lookup, OrderStats, Overview, StreamsResponse, TimelineEvent } from './api-types.js';

type Json = Record<string, unknown>;

const POLL_MS = 2000;
const TOKEN_KEY = 'orderflow-console-token';
const PAGES = ['overview', 'streams', 'dlq', 'lookup'] as const;
type Page = (typeof PAGES)[number];

// ---- DOM helpers -------------------------------------------------------------------------------

type Child = Node | string | number | null | undefined | false;
function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string | boolean | undefined | ((e: Event) => void)> = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    if (typeof v === 'function') el.addEventListener(k.replace(/^on/, ''), v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) el.append(c instanceof Node ? c : String(c));
  return el;
}
function svg(tag: string, attrs: Record<string, string | number> = {}, ...children: Array<Node | string>): SVGElement {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const c of children) el.append(c);
  return el;
}
const $ = (id: string) => document.getElementById(id)!;
const fmtInt = (n: number) => n.toLocaleString('en-US');
const fmtBytes = (n: number) => (n < 1024 ? `${n} B` : n < 1048576 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1048576).toFixed(1)} MiB`);
const fmtSecs = (s?: number) => (s === undefined ? '—' : s < 1 ? `${Math.round(s * 1000)} ms` : `${s.toFixed(2)} s`);
function fmtTime(iso?: string): string {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleTimeString('en-GB', { hour12: false });
}
function ago(iso?: string): string {
  if (!iso) return 'not seen';
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  return s < 60 ? `${s}s ago` : s < 3600 ? `${Math.round(s / 60)}m ago` : `${Math.round(s / 3600)}h ago`;
}
function table(caption: string, head: Array<string | [string, string]>, rows: HTMLTableRowElement[], hideCaption = true): HTMLTableElement {
  return h(
    'table',
    {},
    h('caption', { class: hideCaption ? 'visually-hidden' : undefined }, caption),
    h('thead', {}, h('tr', {}, ...head.map((c) => (Array.isArray(c) ? h('th', { scope: 'col', class: c[1] }, c[0]) : h('th', { scope: 'col' }, c))))),
    h('tbody', {}, ...rows),
  );
}
const statusBadge = (s: string) => h('span', { class: `badge ${s === 'confirmed' ? 'b-ok' : s === 'cancelled' ? 'b-bad' : 'b-info'}` }, s);

/** Replaces a container's content, keeping keyboard focus on the "same" control (data-key). */
function render(container: HTMLElement, ...nodes: Node[]): void {
  const active = document.activeElement instanceof HTMLElement && container.contains(document.activeElement) ? document.activeElement.dataset.key : undefined;
  container.replaceChildren(...nodes);
  if (active) container.querySelector<HTMLElement>(`[data-key="${CSS.escape(active)}"]`)?.focus();
}

// ---- API ---------------------------------------------------------------------------------------

class Unauthorized extends Error {}

async function api<T>(path: string, init: RequestInit = {}): Promise<T> {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const headers = new Headers(init.headers);
  if (token) headers.set('authorization', `Bearer ${token}`);
  if (init.body) headers.set('content-type', 'application/json');
  const r = await fetch(`/api${path}`, { ...init, headers });
  if (r.status === 401) throw new Unauthorized('token required');
  const body = (await r.json().catch(() => ({}))) as Json;
  if (!r.ok) throw new Error(typeof body.detail === 'string' ? body.detail : `HTTP ${r.status}`);
  return body as T;
}

function showAuth(message?: string): void {
  $('auth').hidden = false;
  for (const p of PAGES) $(`page-${p}`).hidden = true;
  notice(message ?? '', 'warn');
  $('token').focus();
}

function notice(text: string, kind: 'ok' | 'bad' | 'warn' = 'bad'): void {
  const n = $('notice');
  n.replaceChildren(...(text ? [h('p', { class: `msg ${kind}` }, text)] : []));
}

// ---- Overview ----------------------------------------------------------------------------------

const SERIES = [
  { key: 'created', label: 'Created', color: '#0b5cad' },
  { key: 'confirmed', label: 'Confirmed', color: '#1a7f37' },
  { key: 'cancelled', label: 'Cancelled', color: '#b42318' },
] as const;

function chart(series: OrderStats['series']): Node {
  const W = 640;
  const H = 180;
  const pad = { l: 36, r: 8, t: 10, b: 24 };
  const max = Math.max(1, ...series.flatMap((p) => [p.created, p.confirmed, p.cancelled]));
  const x = (i: number) => pad.l + (series.length <= 1 ? 0 : (i * (W - pad.l - pad.r)) / (series.length - 1));
  const y = (v: number) => H - pad.b - (v * (H - pad.t - pad.b)) / max;
  const g: Array<Node> = [];
  for (const t of [0, 0.5, 1]) {
    const v = Math.round(max * t);
    g.push(svg('line', { x1: pad.l, x2: W - pad.r, y1: y(v), y2: y(v), stroke: '#e3e7ec' }));
    g.push(svg('text', { x: pad.l - 6, y: y(v) + 4, 'text-anchor': 'end', 'font-size': 11, fill: '#59636e' }, String(v)));
  }
  series.forEach((p, i) => {
    if (i % 3 === 0 || i === series.length - 1) g.push(svg('text', { x: x(i), y: H - 6, 'text-anchor': i === series.length - 1 ? 'end' : i === 0 ? 'start' : 'middle', 'font-size': 11, fill: '#59636e' }, fmtTime(p.at).slice(0, 5)));
  });
  for (const s of SERIES) {
    const pts = series.map((p, i) => `${x(i).toFixed(1)},${y(p[s.key]).toFixed(1)}`).join(' ');
    g.push(svg('polyline', { points: pts, fill: 'none', stroke: s.color, 'stroke-width': 2 }));
    series.forEach((p, i) => g.push(svg('circle', { cx: x(i), cy: y(p[s.key]), r: 2.5, fill: s.color })));
  }
  const total = (k: 'created' | 'confirmed' | 'cancelled') => series.reduce((n, p) => n + p[k], 0);
  const desc = `Orders per minute over the last ${series.length} minutes: ${total('created')} created, ${total('confirmed')} confirmed, ${total('cancelled')} cancelled.`;
  const el = svg('svg', { viewBox: `0 0 ${W} ${H}`, width: '100%', role: 'img', 'aria-label': desc }, svg('title', {}, desc), ...g);
  const legend = h('div', { class: 'legend', 'aria-hidden': 'true' }, ...SERIES.map((s) => h('span', {}, h('span', { class: 'sw', style: `background:${s.color}` }), s.label)));
  const data = h(
    'details',
    {},
    h('summary', {}, 'Data table'),
    table('Orders per minute', ['Minute', ['Created', 'num'], ['Confirmed', 'num'], ['Cancelled', 'num']], series.map((p) => h('tr', {}, h('td', {}, fmtTime(p.at).slice(0, 5)), h('td', { class: 'num' }, p.created), h('td', { class: 'num' }, p.confirmed), h('td', { class: 'num' }, p.cancelled)))),
  );
  return h('div', {}, legend, el, data);
}

function countsTable(caption: string, counts: Record<string, number>, label: string, testid: string): Node {
  const entries = Object.entries(counts).sort((a, b) => b[1] - a[1]);
  if (!entries.length) return h('p', { class: 'muted' }, 'none');
  return table(caption, [label, ['Orders', 'num']], entries.map(([k, v]) => h('tr', { 'data-testid': `${testid}-${k}` }, h('td', {}, k), h('td', { class: 'num' }, fmtInt(v)))));
}

async function loadOverview(): Promise<void> {
  const o = await api<Overview>('/overview');
  const stats = o.orders;
  const statuses = ['pending', 'reserved', 'paid', 'confirmed', 'cancelled'];
  const lat = o.saga?.latency;
  const cards: Node[] = [];
  if (o.errors.length) cards.push(h('div', { class: 'card wide msg warn' }, ...o.errors.map((e) => h('p', {}, e))));
  cards.push(
    h(
      'div',
      { class: 'card', 'data-testid': 'orders-by-status' },
      h('h3', {}, `Orders by state (last ${stats?.windowMinutes ?? '?'} min)`),
      stats
        ? table('Orders by state', ['State', ['Last minutes', 'num'], ['All', 'num']], statuses.map((s) => h('tr', { 'data-testid': `status-${s}` }, h('td', {}, statusBadge(s)), h('td', { class: 'num' }, fmtInt(stats.windowByStatus[s] ?? 0)), h('td', { class: 'num' }, fmtInt(stats.byStatus[s] ?? 0)))))
        : h('p', { class: 'muted' }, 'order-service unavailable'),
    ),
    h(
      'div',
      { class: 'card', 'data-testid': 'latency' },
      h('h3', {}, 'Accepted → confirmed'),
      h('p', {}, h('span', { class: 'big' }, fmtSecs(lat?.p50)), ' p50'),
      h('p', {}, h('span', { class: 'big' }, fmtSecs(lat?.p99)), ' p99'),
      h('p', { class: 'muted' }, lat ? `${fmtInt(lat.count)} orders, ${lat.windowSeconds ? `last ${Math.round(lat.windowSeconds / 60)} min` : 'since order-service started'} (order-service histogram)` : 'no metrics yet'),
    ),
    h(
      'div',
      { class: 'card', 'data-testid': 'cancel-reasons' },
      h('h3', {}, 'Saga outcomes'),
      o.saga ? h('p', {}, statusBadge('confirmed'), ' ', fmtInt(o.saga.outcomes.confirmed ?? 0), '  ', statusBadge('cancelled'), ' ', fmtInt(o.saga.outcomes.cancelled ?? 0), h('span', { class: 'muted' }, ' since order-service started')) : '',
      h('h3', {}, 'Cancelled by reason'),
      countsTable('Cancelled orders by reason', stats?.cancelReasons ?? o.saga?.cancelReasons ?? {}, 'Reason', 'reason'),
    ),
    h(
      'div',
      { class: 'card' },
      h('h3', {}, 'Platform'),
      h('ul', {}, h('li', {}, 'NATS ', o.nats.connected ? h('span', { class: 'badge b-ok' }, 'connected') : h('span', { class: 'badge b-bad' }, 'disconnected')), ...o.services.map((s) => h('li', {}, `${s.name} `, s.ready ? h('span', { class: 'badge b-ok' }, 'ready') : h('span', { class: 'badge b-bad', title: s.detail ?? '' }, 'not ready'), s.detail ? h('span', { class: 'muted' }, ` ${s.detail}`) : ''))),
      h('p', { 'data-testid': 'dlq-total' }, h('a', { href: '#dlq' }, 'Dead letters'), ': ', h('strong', {}, fmtInt(o.deadLetters))),
      o.growingConsumers.length ? h('p', { class: 'msg warn' }, 'Pending keeps growing: ', o.growingConsumers.join(', ')) : h('p', { class: 'muted' }, 'No consumer is falling behind.'),
    ),
  );
  if (stats) cards.push(h('div', { class: 'card wide' }, h('h3', {}, `Orders per minute (last ${stats.windowMinutes} min)`), chart(stats.series)));
  render($('overview-body'), h('div', { class: 'grid' }, ...cards));
  setDlqCount(o.deadLetters);
}

function setDlqCount(n: number): void {
  const b = $('dlq-count');
  b.hidden = n === 0;
  b.textContent = String(n);
  b.setAttribute('aria-label', `${n} dead letters`);
}

// ---- Streams -----------------------------------------------------------------------------------

function sparkline(values: number[]): Node {
  if (values.length < 2) return h('span', {});
  const max = Math.max(1, ...values);
  const pts = values.map((v, i) => `${((i * 60) / (values.length - 1)).toFixed(1)},${(16 - (v * 14) / max).toFixed(1)}`).join(' ');
  return svg('svg', { width: 60, height: 18, 'aria-hidden': 'true' }, svg('polyline', { points: pts, fill: 'none', stroke: '#59636e', 'stroke-width': 1.5 }));
}

async function loadStreams(): Promise<void> {
  const s = await api<StreamsResponse>('/streams');
  const cards = s.streams.map((st) =>
    h(
      'section',
      { class: 'card', 'aria-labelledby': `st-${st.name}`, 'data-testid': `stream-${st.name}` },
      h('h3', { id: `st-${st.name}` }, st.name, ' ', h('span', { class: 'muted' }, st.subjects.join(', '))),
      st.error ? h('p', { class: 'msg bad' }, st.error) : '',
      h(
        'p',
        {},
        h('strong', { 'data-testid': 'messages' }, fmtInt(st.messages)), ' messages · ', fmtBytes(st.bytes), ' · ', fmtInt(st.subjectCount), ' subjects · seq ', `${st.firstSeq}–${st.lastSeq}`, st.lastTime ? ` · last ${ago(st.lastTime)}` : '',
      ),
      h('p', { class: 'muted' }, 'Stream resource ', h('code', {}, st.resource), ' — ', h('code', {}, st.kubectl)),
      st.consumers.length
        ? table(
            `Consumers of ${st.name}`,
            ['Consumer', 'Filter', ['Pending', 'num'], 'Trend', ['Ack pending', 'num'], ['Redelivered', 'num'], 'Last activity', 'Consumer resource'],
            st.consumers.map((c) =>
              h(
                'tr',
                { class: c.growing ? 'growing' : undefined, 'data-testid': `consumer-${c.name}` },
                h('th', { scope: 'row' }, c.name, c.growing ? h('span', {}, ' ', h('span', { class: 'badge b-warn' }, 'pending growing')) : ''),
                h('td', {}, h('code', {}, c.filterSubject ?? '')),
                h('td', { class: 'num' }, fmtInt(c.numPending)),
                h('td', {}, sparkline(c.pendingHistory)),
                h('td', { class: 'num' }, fmtInt(c.numAckPending)),
                h('td', { class: 'num' }, fmtInt(c.numRedelivered)),
                h('td', {}, ago(c.lastActivity)),
                h('td', {}, h('code', { title: c.kubectl }, c.resource)),
              ),
            ),
          )
        : h('p', { class: 'muted' }, 'no consumers'),
    ),
  );
  render($('streams-body'), h('p', { class: 'muted' }, `Sampled ${fmtTime(s.sampledAt)} from JetStream; a consumer is flagged when its pending count rose over its last samples.`), ...cards);
}

// ---- Dead letters ------------------------------------------------------------------------------

const expanded = new Set<number>();
let lastDlq = '';

function confirmDialog(text: string, okLabel: string): Promise<boolean> {
  const d = $('confirm') as HTMLDialogElement;
  $('confirm-text').textContent = text;
  $('confirm-ok').textContent = okLabel;
  return new Promise((resolve) => {
    d.addEventListener('close', () => resolve(d.returnValue === 'ok'), { once: true });
    d.returnValue = 'cancel';
    d.showModal();
    (d.querySelector('button[value="cancel"]') as HTMLButtonElement).focus();
  });
}

function dlqStatus(text: string, kind: 'ok' | 'bad'): void {
  $('dlq-status').replaceChildren(h('p', { class: `msg ${kind}` }, text));
}

async function replay(e: DeadLetterView): Promise<void> {
  try {
    const r = await api<{ subject: string; replayedSeq: number }>(`/dlq/${e.seq}/replay`, { method: 'POST' });
    dlqStatus(`Replayed dead letter ${e.seq} to ${r.subject} (stream sequence ${r.replayedSeq}).`, 'ok');
  } catch (err) {
    dlqStatus(`Replay of ${e.seq} failed: ${(err as Error).message}`, 'bad');
  }
  lastDlq = '';
  await loadDlq();
}

async function discard(e: DeadLetterView): Promise<void> {
  if (!(await confirmDialog(`Discard dead letter ${e.seq} (${e.originalSubject}, ${e.reason})? This cannot be undone.`, 'Discard'))) return;
  try {
    await api(`/dlq/${e.seq}/discard`, { method: 'POST', body: JSON.stringify({ confirm: true }) });
    dlqStatus(`Discarded dead letter ${e.seq}.`, 'ok');
  } catch (err) {
    dlqStatus(`Discard of ${e.seq} failed: ${(err as Error).message}`, 'bad');
  }
  lastDlq = '';
  await loadDlq();
}

async function replayAll(g: DeadLetterGroup): Promise<void> {
  if (!(await confirmDialog(`Replay all ${g.entries.length} dead letters of ${g.subject} to their original subjects?`, 'Replay all'))) return;
  try {
    const r = await api<{ replayed: number; failed: number }>('/dlq/replay-all', { method: 'POST', body: JSON.stringify({ subject: g.subject }) });
    dlqStatus(`Replayed ${r.replayed} of ${g.subject}${r.failed ? `, ${r.failed} failed` : ''}.`, r.failed ? 'bad' : 'ok');
  } catch (err) {
    dlqStatus(`Replay all failed: ${(err as Error).message}`, 'bad');
  }
  lastDlq = '';
  await loadDlq();
}

function dlqRow(e: DeadLetterView): HTMLTableRowElement[] {
  const open = expanded.has(e.seq);
  const detailsId = `dl-${e.seq}-details`;
  const row = h(
    'tr',
    { 'data-testid': `dead-letter-${e.seq}` },
    h('td', { class: 'num' }, e.seq),
    h('td', {}, fmtTime(e.time)),
    h('td', {}, e.reason),
    h('td', {}, h('code', {}, e.originalSubject)),
    h('td', { class: 'num' }, e.deliveries),
    h('td', {}, e.orderId ? h('a', { href: `#lookup?q=${encodeURIComponent(e.orderId)}` }, h('code', {}, e.orderId.slice(0, 8))) : '—'),
    h(
      'td',
      {},
      h(
        'div',
        { class: 'actions' },
        h('button', { type: 'button', 'aria-expanded': open ? 'true' : 'false', 'aria-controls': detailsId, 'data-key': `show-${e.seq}`, onclick: () => { if (open) expanded.delete(e.seq); else expanded.add(e.seq); lastDlq = ''; void loadDlq(); } }, open ? 'Hide' : 'Show'),
        h('button', { type: 'button', class: 'primary', 'data-key': `replay-${e.seq}`, 'aria-label': `Replay dead letter ${e.seq}`, onclick: (ev: Event) => { (ev.currentTarget as HTMLButtonElement).disabled = true; void replay(e); } }, 'Replay'),
        h('button', { type: 'button', class: 'danger', 'data-key': `discard-${e.seq}`, 'aria-label': `Discard dead letter ${e.seq}`, onclick: () => void discard(e) }, 'Discard'),
      ),
    ),
  );
  if (!open) return [row];
  const headers = Object.entries(e.headers).flatMap(([k, vs]) => vs.map((v) => h('tr', {}, h('th', { scope: 'row' }, k), h('td', {}, h('code', {}, v)))));
  const detail = h(
    'tr',
    { id: detailsId },
    h(
      'td',
      { colspan: '7' },
      h('div', { class: 'grid' }, h('div', {}, h('h4', {}, 'Headers'), table(`Headers of dead letter ${e.seq}`, ['Header', 'Value'], headers)), h('div', {}, h('h4', {}, e.json ? 'Payload (JSON)' : 'Payload (not JSON)'), h('pre', { tabindex: '0', 'aria-label': `Payload of dead letter ${e.seq}` }, e.payload))),
      h('p', { class: 'muted' }, `From ${e.stream} sequence ${e.streamSeq}, consumer ${e.consumer}.`),
    ),
  );
  return [row, detail];
}

async function loadDlq(): Promise<void> {
  const d = await api<DlqResponse>('/dlq');
  setDlqCount(d.total);
  const key = JSON.stringify(d) + [...expanded].join(',');
  if (key === lastDlq) return; // unchanged: keep the DOM (and focus, open rows) as it is
  lastDlq = key;
  const groups = d.groups.map((g) =>
    h(
      'section',
      { class: 'card', 'aria-labelledby': `g-${g.subject}`, 'data-testid': `dlq-group-${g.consumer}` },
      h('div', { class: 'actions', style: 'justify-content:space-between;align-items:center' }, h('h3', { id: `g-${g.subject}` }, h('code', {}, g.subject), ' ', h('span', { class: `badge ${g.count ? 'b-bad' : 'b-ok'}` }, `${g.count}`)), g.entries.length ? h('button', { type: 'button', 'data-key': `all-${g.subject}`, onclick: () => void replayAll(g) }, `Replay all (${g.entries.length})`) : ''),
      h('p', { class: 'muted' }, `Consumer ${g.consumer} on ${g.stream}`),
      g.entries.length ? table(`Dead letters on ${g.subject}`, [['Seq', 'num'], 'Time', 'Reason', 'Original subject', ['Deliveries', 'num'], 'Order', 'Actions'], g.entries.flatMap(dlqRow)) : h('p', { class: 'muted' }, 'empty'),
    ),
  );
  render($('dlq-body'), h('p', {}, h('strong', { 'data-testid': 'dlq-total-count' }, fmtInt(d.total)), ` messages in ${d.stream}`, d.truncated ? ' (list truncated)' : ''), ...groups);
}

// ---- Order lookup ------------------------------------------------------------------------------

let lookupQuery = '';

function eventItem(e: TimelineEvent, jaeger: boolean): HTMLLIElement {
  const summary = e.data && typeof e.data === 'object' ? ['reason', 'amount', 'status'].map((k) => ((e.data as Json)[k] !== undefined ? `${k}: ${String((e.data as Json)[k])}` : '')).filter(Boolean).join(', ') : '';
  return h(
    'li',
    { class: e.deadLetter ? 'dead' : undefined, 'data-testid': `event-${e.type}` },
    h('strong', {}, e.type), ' ', h('span', { class: 'muted' }, `${fmtTime(e.time)} · ${e.stream} #${e.seq}${e.version ? ` · ${e.version}` : ''}`),
    summary ? h('div', {}, summary) : '',
    e.deadLetter ? h('div', {}, h('span', { class: 'badge b-bad' }, 'dead letter'), ` ${e.deadLetter.consumer}: ${e.deadLetter.reason} `, h('a', { href: '#dlq' }, 'open dead letters')) : '',
    e.replayOf ? h('div', {}, h('span', { class: 'badge b-info' }, 'replayed'), ` from ${e.replayOf}`) : '',
    h('div', { class: 'muted' }, e.traceId ? (e.traceUrl ? h('a', { href: e.traceUrl, target: '_blank', rel: 'noopener', 'data-testid': 'trace-link' }, `Trace ${e.traceId.slice(0, 12)}… in Jaeger`) : h('span', {}, 'trace ', h('code', {}, e.traceId), jaeger ? '' : ' (set JAEGER_UI_URL for links)')) : 'no trace context'),
  );
}

async function loadLookup(): Promise<void> {
  if (!lookupQuery) return;
  const r = await api<Lookup>(`/orders/lookup?q=${encodeURIComponent(lookupQuery)}`);
  const jaeger = Boolean(r.jaegerUiUrl);
  const blocks: Node[] = [];
  if (!r.orders.length && !r.otherEvents.length) blocks.push(h('p', { class: 'msg warn' }, `No order or event found for “${r.query}”.`));
  for (const o of r.orders) {
    blocks.push(
      h(
        'article',
        { class: 'card', 'aria-labelledby': `o-${o.orderId}`, 'data-testid': `order-${o.orderId}` },
        h('h3', { id: `o-${o.orderId}` }, 'Order ', h('code', {}, o.orderId), ' ', h('span', { 'data-testid': 'order-status' }, statusBadge(o.status))),
        h('p', { class: 'muted' }, `customer ${o.customerId ?? '?'} · total ${o.total ?? '—'} · correlation `, h('code', {}, o.correlationId ?? '?'), o.reason ? ` · reason ${o.reason}` : ''),
        h('div', { class: 'grid' },
          h('div', {}, h('h4', {}, 'State history (order-service)'), h('ol', { class: 'timeline' }, ...o.history.map((s) => h('li', {}, statusBadge(s.status), ` ${fmtTime(s.at)}`, s.reason ? ` — ${s.reason}` : '')))),
          h('div', {}, h('h4', {}, `Events in the streams (${o.events.length})`), o.events.length ? h('ol', { class: 'timeline' }, ...o.events.map((e) => eventItem(e, jaeger))) : h('p', { class: 'muted' }, 'none found')),
        ),
      ),
    );
  }
  if (r.otherEvents.length) blocks.push(h('section', { class: 'card' }, h('h3', {}, 'Other events with this correlation id'), h('ol', { class: 'timeline' }, ...r.otherEvents.map((e) => eventItem(e, jaeger)))));
  if (r.truncated.length) blocks.push(h('p', { class: 'muted' }, `Search stopped early in ${r.truncated.join(', ')} (busy streams).`));
  render($('lookup-body'), ...blocks);
}

// ---- routing and polling -----------------------------------------------------------------------

let page: Page = 'overview';
let timer: number | undefined;
let inFlight = false;

function currentPage(): Page {
  const [name, query] = location.hash.replace(/^#/, '').split('?');
  if (name === 'lookup' && query) {
    const q = new URLSearchParams(query).get('q') ?? '';
    if (q && q !== lookupQuery) {
      lookupQuery = q;
      ($('lookup-q') as HTMLInputElement).value = q;
    }
  }
  return (PAGES as readonly string[]).includes(name ?? '') ? (name as Page) : 'overview';
}

async function refresh(): Promise<void> {
  if (inFlight) return;
  inFlight = true;
  try {
    if (page === 'overview') await loadOverview();
    else if (page === 'streams') await loadStreams();
    else if (page === 'dlq') await loadDlq();
    else await loadLookup();
    $('auth').hidden = true;
    $(`page-${page}`).hidden = false;
    if ($('notice').textContent) notice('');
    const live = $('live');
    live.classList.remove('stale');
    live.textContent = `updated ${fmtTime(new Date().toISOString())}`;
  } catch (err) {
    if (err instanceof Unauthorized) {
      showAuth(sessionStorage.getItem(TOKEN_KEY) ? 'The token was not accepted.' : 'Enter the console token to continue.');
    } else {
      $('live').classList.add('stale');
      $('live').textContent = `update failed ${fmtTime(new Date().toISOString())}`;
      notice((err as Error).message);
    }
  } finally {
    inFlight = false;
  }
}

function show(): void {
  page = currentPage();
  for (const p of PAGES) $(`page-${p}`).hidden = p !== page;
  document.querySelectorAll<HTMLAnchorElement>('nav a[data-page]').forEach((a) => {
    if (a.dataset.page === page) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  });
  document.title = `${document.querySelector(`nav a[data-page="${page}"]`)?.textContent?.replace(/\d+$/, '').trim() ?? ''} · orderflow console`;
  void refresh();
}

function schedule(): void {
  window.clearInterval(timer);
  timer = window.setInterval(() => {
    if (!document.hidden) void refresh();
  }, POLL_MS);
}

function main(): void {
  window.addEventListener('hashchange', show);
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden) void refresh();
  });
  $('auth-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const t = ($('token') as HTMLInputElement).value.trim();
    if (!t) return;
    sessionStorage.setItem(TOKEN_KEY, t);
    ($('token') as HTMLInputElement).value = '';
    $('signout').hidden = false;
    notice('');
    show();
  });
  $('signout').hidden = !sessionStorage.getItem(TOKEN_KEY);
  $('signout').addEventListener('click', () => {
    sessionStorage.removeItem(TOKEN_KEY);
    $('signout').hidden = true;
    show();
  });
  $('lookup-form').addEventListener('submit', (e) => {
    e.preventDefault();
    lookupQuery = ($('lookup-q') as HTMLInputElement).value.trim();
    $('lookup-body').replaceChildren(h('p', { class: 'muted' }, 'Searching the streams…'));
    if (location.hash !== `#lookup?q=${encodeURIComponent(lookupQuery)}`) location.hash = `lookup?q=${encodeURIComponent(lookupQuery)}`;
    else void refresh();
  });
  show();
  schedule();
}

main();
