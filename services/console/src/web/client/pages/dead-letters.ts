/// <reference lib="dom" />
/** Dead letters: grouped by DLQ subject, each with headers and payload, replay and (confirmed) discard. */
import type { DeadLetterGroup, DeadLetterView, DlqResponse } from '../../api-types.js';
import { api } from '../api.js';
import { $, h, render } from '../dom.js';
import { fmtInt, fmtTime } from '../format.js';
import { confirmDialog, setDlqCount, table, type Column } from '../widgets.js';

/** Rows whose details are open (kept across polls). */
const expanded = new Set<number>();
/** What was rendered last: an unchanged answer keeps the DOM (focus, open rows) as it is. */
let lastRendered = '';

function status(text: string, kind: 'ok' | 'bad'): void {
  $('dlq-status').replaceChildren(h('p', { class: `msg ${kind}` }, text));
}

/** Runs an action on the API, says how it went, and shows the list as it is now. */
async function act(run: () => Promise<{ text: string; ok: boolean }>, failed: string): Promise<void> {
  try {
    const r = await run();
    status(r.text, r.ok ? 'ok' : 'bad');
  } catch (err) {
    status(`${failed}: ${(err as Error).message}`, 'bad');
  }
  lastRendered = '';
  await loadDeadLetters();
}

function replay(e: DeadLetterView): Promise<void> {
  return act(async () => {
    const r = await api<{ subject: string; replayedSeq: number }>(`/dlq/${e.seq}/replay`, { method: 'POST' });
    return { text: `Replayed dead letter ${e.seq} to ${r.subject} (stream sequence ${r.replayedSeq}).`, ok: true };
  }, `Replay of ${e.seq} failed`);
}

async function discard(e: DeadLetterView): Promise<void> {
  const question = `Discard dead letter ${e.seq} (${e.originalSubject}, ${e.reason})? This cannot be undone.`;
  if (!(await confirmDialog(question, 'Discard'))) return;
  await act(async () => {
    await api(`/dlq/${e.seq}/discard`, { method: 'POST', body: JSON.stringify({ confirm: true }) });
    return { text: `Discarded dead letter ${e.seq}.`, ok: true };
  }, `Discard of ${e.seq} failed`);
}

async function replayAll(g: DeadLetterGroup): Promise<void> {
  const question = `Replay all ${g.entries.length} dead letters of ${g.subject} to their original subjects?`;
  if (!(await confirmDialog(question, 'Replay all'))) return;
  await act(async () => {
    const body = JSON.stringify({ subject: g.subject });
    const r = await api<{ replayed: number; failed: number }>('/dlq/replay-all', { method: 'POST', body });
    return { text: `Replayed ${r.replayed} of ${g.subject}${r.failed ? `, ${r.failed} failed` : ''}.`, ok: !r.failed };
  }, 'Replay all failed');
}

function actions(e: DeadLetterView, open: boolean, detailsId: string): HTMLElement {
  const toggle = () => {
    if (open) expanded.delete(e.seq);
    else expanded.add(e.seq);
    lastRendered = '';
    void loadDeadLetters();
  };
  const replayClicked = (ev: Event) => {
    (ev.currentTarget as HTMLButtonElement).disabled = true;
    void replay(e);
  };
  const button = (key: string, attrs: Record<string, string | ((e: Event) => void)>, label: string) =>
    h('button', { type: 'button', 'data-key': `${key}-${e.seq}`, ...attrs }, label);
  return h(
    'div',
    { class: 'actions' },
    button('show', { 'aria-expanded': open ? 'true' : 'false', 'aria-controls': detailsId, onclick: toggle }, open ? 'Hide' : 'Show'),
    button('replay', { class: 'primary', 'aria-label': `Replay dead letter ${e.seq}`, onclick: replayClicked }, 'Replay'),
    button('discard', { class: 'danger', 'aria-label': `Discard dead letter ${e.seq}`, onclick: () => void discard(e) }, 'Discard'),
  );
}

function details(e: DeadLetterView, id: string): HTMLTableRowElement {
  const header = (k: string, v: string) => h('tr', {}, h('th', { scope: 'row' }, k), h('td', {}, h('code', {}, v)));
  const headers = Object.entries(e.headers).flatMap(([k, vs]) => vs.map((v) => header(k, v)));
  const payload = h('pre', { tabindex: '0', 'aria-label': `Payload of dead letter ${e.seq}` }, e.payload);
  return h(
    'tr',
    { id },
    h(
      'td',
      { colspan: '7' },
      h(
        'div',
        { class: 'grid' },
        h('div', {}, h('h4', {}, 'Headers'), table(`Headers of dead letter ${e.seq}`, ['Header', 'Value'], headers)),
        h('div', {}, h('h4', {}, e.json ? 'Payload (JSON)' : 'Payload (not JSON)'), payload),
      ),
      h('p', { class: 'muted' }, `From ${e.stream} sequence ${e.streamSeq}, consumer ${e.consumer}.`),
    ),
  );
}

function rows(e: DeadLetterView): HTMLTableRowElement[] {
  const open = expanded.has(e.seq);
  const detailsId = `dl-${e.seq}-details`;
  const order = e.orderId ? h('a', { href: `#lookup?q=${encodeURIComponent(e.orderId)}` }, h('code', {}, e.orderId.slice(0, 8))) : '—';
  const row = h(
    'tr',
    { 'data-testid': `dead-letter-${e.seq}` },
    h('td', { class: 'num' }, e.seq),
    h('td', {}, fmtTime(e.time)),
    h('td', {}, e.reason),
    h('td', {}, h('code', {}, e.originalSubject)),
    h('td', { class: 'num' }, e.deliveries),
    h('td', {}, order),
    h('td', {}, actions(e, open, detailsId)),
  );
  return open ? [row, details(e, detailsId)] : [row];
}

const HEAD: Column[] = [['Seq', 'num'], 'Time', 'Reason', 'Original subject', ['Deliveries', 'num'], 'Order', 'Actions'];

function groupCard(g: DeadLetterGroup): HTMLElement {
  const count = h('span', { class: `badge ${g.count ? 'b-bad' : 'b-ok'}` }, `${g.count}`);
  const title = h('h3', { id: `g-${g.subject}` }, h('code', {}, g.subject), ' ', count);
  const all = g.entries.length
    ? h('button', { type: 'button', 'data-key': `all-${g.subject}`, onclick: () => void replayAll(g) }, `Replay all (${g.entries.length})`)
    : '';
  return h(
    'section',
    { class: 'card', 'aria-labelledby': `g-${g.subject}`, 'data-testid': `dlq-group-${g.consumer}` },
    h('div', { class: 'actions', style: 'justify-content:space-between;align-items:center' }, title, all),
    h('p', { class: 'muted' }, `Consumer ${g.consumer} on ${g.stream}`),
    g.entries.length ? table(`Dead letters on ${g.subject}`, HEAD, g.entries.flatMap(rows)) : h('p', { class: 'muted' }, 'empty'),
  );
}

export async function loadDeadLetters(): Promise<void> {
  const d = await api<DlqResponse>('/dlq');
  setDlqCount(d.total);
  const key = JSON.stringify(d) + [...expanded].join(',');
  if (key === lastRendered) return;
  lastRendered = key;
  const count = h('strong', { 'data-testid': 'dlq-total-count' }, fmtInt(d.total));
  const total = h('p', {}, count, ` messages in ${d.stream}`, d.truncated ? ' (list truncated)' : '');
  render($('dlq-body'), total, ...d.groups.map(groupCard));
}
