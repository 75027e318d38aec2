/// <reference lib="dom" />
/** Pieces every page uses: tables, status badges, the notice line, the dead-letter count. */
import { $, h } from './dom.js';

export type Column = string | [label: string, className: string];

/** A table with column heads (`[label, class]` for a styled column) and a caption. */
export function table(caption: string, head: Column[], rows: HTMLTableRowElement[], hideCaption = true): HTMLTableElement {
  const th = (c: Column) => (Array.isArray(c) ? h('th', { scope: 'col', class: c[1] }, c[0]) : h('th', { scope: 'col' }, c));
  return h(
    'table',
    {},
    h('caption', { class: hideCaption ? 'visually-hidden' : undefined }, caption),
    h('thead', {}, h('tr', {}, ...head.map(th))),
    h('tbody', {}, ...rows),
  );
}

export function statusBadge(s: string): HTMLSpanElement {
  const kind = s === 'confirmed' ? 'b-ok' : s === 'cancelled' ? 'b-bad' : 'b-info';
  return h('span', { class: `badge ${kind}` }, s);
}

/** The page-wide message line (empty text clears it). */
export function notice(text: string, kind: 'ok' | 'bad' | 'warn' = 'bad'): void {
  $('notice').replaceChildren(...(text ? [h('p', { class: `msg ${kind}` }, text)] : []));
}

/** The dead-letter count on the navigation link. */
export function setDlqCount(n: number): void {
  const b = $('dlq-count');
  b.hidden = n === 0;
  b.textContent = String(n);
  b.setAttribute('aria-label', `${n} dead letters`);
}

/** The page's confirmation dialog; resolves true when the user confirmed. */
export function confirmDialog(text: string, okLabel: string): Promise<boolean> {
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
