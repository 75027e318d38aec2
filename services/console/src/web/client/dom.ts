/// <reference lib="dom" />
/**
 * Building the page: elements from createElement only (never HTML from data), and a re-render
 * that keeps keyboard focus on the "same" control across polls.
 */

export type Child = Node | string | number | null | undefined | false;
type Attr = string | boolean | undefined | ((e: Event) => void);

/** An element with attributes (`on<event>` functions become listeners) and children. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, Attr> = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
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

export function svg(tag: string, attrs: Record<string, string | number> = {}, ...children: Array<Node | string>): SVGElement {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const c of children) el.append(c);
  return el;
}

/** An element of the page by id (the page always has it). */
export const $ = (id: string): HTMLElement => document.getElementById(id)!;

/** Replaces a container's content, keeping keyboard focus on the "same" control (data-key). */
export function render(container: HTMLElement, ...nodes: Node[]): void {
  const focused = document.activeElement;
  const active = focused instanceof HTMLElement && container.contains(focused) ? focused.dataset.key : undefined;
  container.replaceChildren(...nodes);
  if (active) container.querySelector<HTMLElement>(`[data-key="${CSS.escape(active)}"]`)?.focus();
}
