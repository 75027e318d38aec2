/**
 * The console's single HTML page (styles inline, script from /assets/app.js). Plain semantic
 * HTML: landmarks, a skip link, labelled controls, focus outlines, colours with text labels.
 */
const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

const CSS = `
:root { --bg:#f6f7f9; --fg:#1b1f24; --muted:#59636e; --card:#fff; --line:#d5dae0; --accent:#0b5cad;
  --ok:#1a7f37; --bad:#b42318; --warn:#9a6700; --warnbg:#fff4d6; --badbg:#fde8e7; --okbg:#e6f4ea; }
* { box-sizing: border-box; }
[hidden] { display:none !important; }
body { margin:0; font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif; background:var(--bg); color:var(--fg); }
a { color:var(--accent); }
:focus-visible { outline:3px solid #f59e0b; outline-offset:2px; }
.skip { position:absolute; left:-999px; top:0; background:#fff; padding:.5rem 1rem; z-index:10; }
.skip:focus { left:.5rem; }
header { display:flex; flex-wrap:wrap; align-items:center; gap:.5rem 1.5rem; padding:.6rem 1.5rem; background:#0d1b2a; color:#fff; }
header h1 { font-size:1.15rem; margin:0; }
header .ns { font-size:.8rem; background:#22344a; padding:.1rem .5rem; border-radius:1rem; }
header nav ul { list-style:none; display:flex; gap:.25rem; margin:0; padding:0; flex-wrap:wrap; }
header nav a { color:#dbe7f3; text-decoration:none; padding:.35rem .75rem; border-radius:.35rem; display:inline-block; }
header nav a[aria-current="page"] { background:#fff; color:#0d1b2a; font-weight:600; }
header nav a:hover { text-decoration:underline; }
#live { margin-left:auto; font-size:.85rem; color:#c7d3df; }
#live.stale { color:#ffb4ab; }
main { max-width:1280px; margin:0 auto; padding:1rem 1.5rem 3rem; }
h2 { font-size:1.3rem; margin:.5rem 0 1rem; }
h3 { font-size:1.05rem; margin:0 0 .5rem; }
.grid { display:grid; grid-template-columns:repeat(auto-fit,minmax(260px,1fr)); gap:1rem; }
.card { background:var(--card); border:1px solid var(--line); border-radius:.5rem; padding:1rem; margin-bottom:1rem; }
.card.wide { grid-column:1/-1; }
.big { font-size:1.9rem; font-weight:650; }
.muted { color:var(--muted); font-size:.85rem; }
table { border-collapse:collapse; width:100%; font-size:.9rem; }
th, td { text-align:left; padding:.35rem .5rem; border-bottom:1px solid var(--line); vertical-align:top; }
th { font-weight:600; color:var(--muted); font-size:.8rem; text-transform:uppercase; letter-spacing:.02em; }
th[scope="row"] { text-transform:none; letter-spacing:0; font-size:.85rem; color:var(--fg); }
td.num, th.num { text-align:right; font-variant-numeric:tabular-nums; }
tr.growing td { background:var(--warnbg); }
.badge { display:inline-block; padding:.05rem .45rem; border-radius:.75rem; font-size:.78rem; font-weight:600;
  border:1px solid transparent; }
.b-ok { background:var(--okbg); color:var(--ok); border-color:#a6d8b5; }
.b-bad { background:var(--badbg); color:var(--bad); border-color:#f3b2ac; }
.b-warn { background:var(--warnbg); color:var(--warn); border-color:#f0d28a; }
.b-info { background:#e7f0fb; color:var(--accent); border-color:#b6cff0; }
button { font:inherit; padding:.35rem .8rem; border-radius:.35rem; border:1px solid #8a96a3; background:#fff; cursor:pointer; }
button.primary { background:var(--accent); color:#fff; border-color:var(--accent); }
button.danger { background:#fff; color:var(--bad); border-color:var(--bad); }
button.danger.solid { background:var(--bad); color:#fff; }
button:disabled { opacity:.55; cursor:default; }
.actions { display:flex; gap:.4rem; flex-wrap:wrap; }
pre { background:#0f1720; color:#e6edf3; padding:.75rem; border-radius:.4rem; overflow:auto; max-height:24rem; font-size:.82rem; }
code, .mono { font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace; font-size:.85em; overflow-wrap:anywhere; }
form.inline { display:flex; gap:.5rem; align-items:end; flex-wrap:wrap; }
label { display:block; font-weight:600; font-size:.9rem; margin-bottom:.2rem; }
input[type=text], input[type=password] { font:inherit; padding:.4rem .6rem; border:1px solid #8a96a3;
  border-radius:.35rem; min-width:22rem; max-width:100%; }
#notice { min-height:1.5rem; }
.msg { padding:.5rem .75rem; border-radius:.35rem; margin-bottom:.75rem; }
.msg.ok { background:var(--okbg); } .msg.bad { background:var(--badbg); } .msg.warn { background:var(--warnbg); }
dialog { border:1px solid var(--line); border-radius:.5rem; padding:1.25rem; max-width:32rem; }
dialog::backdrop { background:rgba(0,0,0,.35); }
.legend { display:flex; gap:1rem; font-size:.85rem; margin:.25rem 0; flex-wrap:wrap; }
.sw { display:inline-block; width:.8rem; height:.8rem; border-radius:.15rem; margin-right:.3rem; vertical-align:-1px; }
.timeline { list-style:none; margin:0; padding:0; border-left:3px solid var(--line); }
.timeline li { position:relative; margin:0 0 .6rem 0; padding-left:1rem; }
.timeline li::before { content:""; position:absolute; left:-8px; top:.45rem; width:11px; height:11px;
  border-radius:50%; background:var(--accent); }
.timeline li.dead::before { background:var(--bad); }
.visually-hidden { position:absolute!important; width:1px; height:1px; overflow:hidden; clip:rect(0 0 0 0); white-space:nowrap; }
details summary { cursor:pointer; }
`;

export function PAGE(opts: { namespace: string; tokenRequired: boolean }): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>orderflow console</title>
<style>${CSS}</style>
</head>
<body data-namespace="${esc(opts.namespace)}" data-token-required="${opts.tokenRequired ? 'true' : 'false'}">
<a class="skip" href="#content">Skip to content</a>
<header>
  <h1>orderflow console</h1>
  ${opts.namespace ? `<span class="ns" title="ORDERFLOW_NAMESPACE">namespace ${esc(opts.namespace)}</span>` : ''}
  <nav aria-label="Sections">
    <ul>
      <li><a href="#overview" data-page="overview">Overview</a></li>
      <li><a href="#streams" data-page="streams">Streams &amp; consumers</a></li>
      <li><a href="#dlq" data-page="dlq">Dead letters <span id="dlq-count" class="badge b-info" hidden></span></a></li>
      <li><a href="#lookup" data-page="lookup">Order lookup</a></li>
    </ul>
  </nav>
  <p id="live" role="status" aria-live="polite">connecting…</p>
</header>
<main id="content" tabindex="-1">
  <div id="notice" role="alert"></div>
  <section id="auth" class="card" hidden aria-labelledby="auth-title">
    <h2 id="auth-title">Console token</h2>
    <p>This console is protected. Enter the token (<code>CONSOLE_TOKEN</code>); it is kept in this tab only (session storage).</p>
    <form id="auth-form" class="inline">
      <div><label for="token">Token</label><input id="token" name="token" type="password" autocomplete="current-password" required></div>
      <button class="primary" type="submit">Sign in</button>
    </form>
  </section>
  <section id="page-overview" data-page-section="overview" hidden aria-labelledby="h-overview">
    <h2 id="h-overview">Overview</h2><div id="overview-body">Loading…</div>
  </section>
  <section id="page-streams" data-page-section="streams" hidden aria-labelledby="h-streams">
    <h2 id="h-streams">Streams &amp; consumers</h2><div id="streams-body">Loading…</div>
  </section>
  <section id="page-dlq" data-page-section="dlq" hidden aria-labelledby="h-dlq">
    <h2 id="h-dlq">Dead letters</h2><div id="dlq-status" role="status" aria-live="polite"></div><div id="dlq-body">Loading…</div>
  </section>
  <section id="page-lookup" data-page-section="lookup" hidden aria-labelledby="h-lookup">
    <h2 id="h-lookup">Order lookup</h2>
    <form id="lookup-form" class="inline card" role="search">
      <div><label for="lookup-q">Order id or correlation id</label><input id="lookup-q" name="q" type="text"
          autocomplete="off" spellcheck="false" required></div>
      <button class="primary" type="submit">Look up</button>
    </form>
    <div id="lookup-body" aria-live="polite"></div>
  </section>
</main>
<footer class="muted" style="text-align:center;padding:1rem">
  Reads public APIs only: JetStream, the services' HTTP endpoints, the DLQ.
  <button id="signout" type="button" hidden>Forget token</button>
</footer>
<dialog id="confirm" aria-labelledby="confirm-title" aria-describedby="confirm-text">
  <form method="dialog">
    <h3 id="confirm-title">Are you sure?</h3>
    <p id="confirm-text"></p>
    <div class="actions"><button value="cancel" type="submit">Cancel</button><button id="confirm-ok"
        class="danger solid" value="ok" type="submit">Confirm</button></div>
  </form>
</dialog>
<script type="module" src="/assets/app.js"></script>
</body>
</html>`;
}
