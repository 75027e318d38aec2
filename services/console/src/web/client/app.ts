/// <reference lib="dom" />
/**
 * The console's browser client (served as /assets/app.js, an ES module): hash-routed pages,
 * polled every 2 s (paused while the tab is hidden), DOM built with createElement (no HTML from
 * data), token in sessionStorage. This file wires the page's forms and buttons.
 */
import { token } from './api.js';
import { $, h } from './dom.js';
import { refresh, show, startPolling } from './router.js';
import { setLookupQuery } from './pages/order-lookup.js';
import { notice } from './widgets.js';

function signIn(e: Event): void {
  e.preventDefault();
  const input = $('token') as HTMLInputElement;
  const t = input.value.trim();
  if (!t) return;
  token.set(t);
  input.value = '';
  $('signout').hidden = false;
  notice('');
  show();
}

function signOut(): void {
  token.clear();
  $('signout').hidden = true;
  show();
}

function lookUp(e: Event): void {
  e.preventDefault();
  const q = ($('lookup-q') as HTMLInputElement).value.trim();
  setLookupQuery(q);
  $('lookup-body').replaceChildren(h('p', { class: 'muted' }, 'Searching the streams…'));
  const hash = `#lookup?q=${encodeURIComponent(q)}`;
  if (location.hash !== hash) location.hash = hash.slice(1);
  else void refresh();
}

window.addEventListener('hashchange', show);
$('auth-form').addEventListener('submit', signIn);
$('signout').hidden = !token.get();
$('signout').addEventListener('click', signOut);
$('lookup-form').addEventListener('submit', lookUp);
show();
startPolling();
