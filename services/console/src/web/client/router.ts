/// <reference lib="dom" />
/**
 * Hash routing (#overview, #streams, #dlq, #lookup?q=…) and polling: the shown page reloads every
 * 2 s while the tab is visible; a 401 turns the page into the token form.
 */
import { token, Unauthorized } from './api.js';
import { $ } from './dom.js';
import { fmtTime } from './format.js';
import { loadDeadLetters } from './pages/dead-letters.js';
import { loadOrderLookup, lookupQuery, setLookupQuery } from './pages/order-lookup.js';
import { loadOverview } from './pages/overview.js';
import { loadStreams } from './pages/streams.js';
import { notice } from './widgets.js';

const POLL_MS = 2000;
const PAGES = { overview: loadOverview, streams: loadStreams, dlq: loadDeadLetters, lookup: loadOrderLookup } as const;
type Page = keyof typeof PAGES;
const NAMES = Object.keys(PAGES) as Page[];

let page: Page = 'overview';
let timer: number | undefined;
let inFlight = false;

/** The page the address names (a lookup query in it becomes the current search). */
function currentPage(): Page {
  const [name, query] = location.hash.replace(/^#/, '').split('?');
  if (name === 'lookup' && query) {
    const q = new URLSearchParams(query).get('q') ?? '';
    if (q && q !== lookupQuery()) {
      setLookupQuery(q);
      ($('lookup-q') as HTMLInputElement).value = q;
    }
  }
  return (NAMES as string[]).includes(name ?? '') ? (name as Page) : 'overview';
}

function showAuth(message: string): void {
  $('auth').hidden = false;
  for (const p of NAMES) $(`page-${p}`).hidden = true;
  notice(message, 'warn');
  $('token').focus();
}

function live(text: string, stale: boolean): void {
  const el = $('live');
  el.classList.toggle('stale', stale);
  el.textContent = `${text} ${fmtTime(new Date().toISOString())}`;
}

/** Loads the shown page once (skipped while a load is under way). */
export async function refresh(): Promise<void> {
  if (inFlight) return;
  inFlight = true;
  try {
    await PAGES[page]();
    $('auth').hidden = true;
    $(`page-${page}`).hidden = false;
    if ($('notice').textContent) notice('');
    live('updated', false);
  } catch (err) {
    if (err instanceof Unauthorized) {
      showAuth(token.get() ? 'The token was not accepted.' : 'Enter the console token to continue.');
    } else {
      live('update failed', true);
      notice((err as Error).message);
    }
  } finally {
    inFlight = false;
  }
}

/** Shows the page the address names and loads it. */
export function show(): void {
  page = currentPage();
  for (const p of NAMES) $(`page-${p}`).hidden = p !== page;
  document.querySelectorAll<HTMLAnchorElement>('nav a[data-page]').forEach((a) => {
    if (a.dataset.page === page) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  });
  const title = document.querySelector(`nav a[data-page="${page}"]`)?.textContent?.replace(/\d+$/, '').trim() ?? '';
  document.title = `${title} · orderflow console`;
  void refresh();
}

/** Polls the shown page while the tab is visible, and at once when it becomes visible again. */
export function startPolling(): void {
  window.clearInterval(timer);
  timer = window.setInterval(() => {
    if (!document.hidden) void refresh();
  }, POLL_MS);
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden) void refresh();
  });
}
