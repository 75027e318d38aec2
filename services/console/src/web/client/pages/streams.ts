/// <reference lib="dom" />
/** Streams & consumers: per-stream counts and, per consumer, pending (with its trend) and redeliveries. */
import type { StreamsResponse } from '../../api-types.js';
import { api } from '../api.js';
import { sparkline } from '../chart.js';
import { $, h, render } from '../dom.js';
import { ago, fmtBytes, fmtInt, fmtTime } from '../format.js';
import { table, type Column } from '../widgets.js';

type StreamView = StreamsResponse['streams'][number];
type ConsumerView = StreamView['consumers'][number];

const CONSUMER_HEAD: Column[] = [
  'Consumer',
  'Filter',
  ['Pending', 'num'],
  'Trend',
  ['Ack pending', 'num'],
  ['Redelivered', 'num'],
  'Last activity',
  'Consumer resource',
];

function consumerRow(c: ConsumerView): HTMLTableRowElement {
  const growing = c.growing ? h('span', {}, ' ', h('span', { class: 'badge b-warn' }, 'pending growing')) : '';
  return h(
    'tr',
    { class: c.growing ? 'growing' : undefined, 'data-testid': `consumer-${c.name}` },
    h('th', { scope: 'row' }, c.name, growing),
    h('td', {}, h('code', {}, c.filterSubject ?? '')),
    h('td', { class: 'num' }, fmtInt(c.numPending)),
    h('td', {}, sparkline(c.pendingHistory)),
    h('td', { class: 'num' }, fmtInt(c.numAckPending)),
    h('td', { class: 'num' }, fmtInt(c.numRedelivered)),
    h('td', {}, ago(c.lastActivity)),
    h('td', {}, h('code', { title: c.kubectl }, c.resource)),
  );
}

function streamCard(st: StreamView): HTMLElement {
  return h(
    'section',
    { class: 'card', 'aria-labelledby': `st-${st.name}`, 'data-testid': `stream-${st.name}` },
    h('h3', { id: `st-${st.name}` }, st.name, ' ', h('span', { class: 'muted' }, st.subjects.join(', '))),
    st.error ? h('p', { class: 'msg bad' }, st.error) : '',
    h(
      'p',
      {},
      h('strong', { 'data-testid': 'messages' }, fmtInt(st.messages)),
      ` messages · ${fmtBytes(st.bytes)} · ${fmtInt(st.subjectCount)} subjects · seq ${st.firstSeq}–${st.lastSeq}`,
      st.lastTime ? ` · last ${ago(st.lastTime)}` : '',
    ),
    h('p', { class: 'muted' }, 'Stream resource ', h('code', {}, st.resource), ' — ', h('code', {}, st.kubectl)),
    st.consumers.length
      ? table(`Consumers of ${st.name}`, CONSUMER_HEAD, st.consumers.map(consumerRow))
      : h('p', { class: 'muted' }, 'no consumers'),
  );
}

export async function loadStreams(): Promise<void> {
  const s = await api<StreamsResponse>('/streams');
  const about = `Sampled ${fmtTime(s.sampledAt)} from JetStream; a consumer is flagged when its pending count rose over its last samples.`;
  render($('streams-body'), h('p', { class: 'muted' }, about), ...s.streams.map(streamCard));
}
