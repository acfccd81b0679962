"""The dashboard's stylesheet, served at ``/dashboard/style.css`` (no external assets:
system fonts, no web fonts, no images).  Kept as a Python string so it ships with the
package without package-data configuration."""

CSS = """
:root {
  --bg: #f4f6f9; --panel: #ffffff; --ink: #1d2430; --muted: #5d6878; --line: #dde3ea;
  --brand: #1f5fa8; --brand-ink: #ffffff; --ok: #1f7a4d; --ok-bg: #e3f4ea; --warn: #8a5a00;
  --warn-bg: #fff2d6; --off: #5d6878; --off-bg: #eceff3; --bad: #a3222b; --bad-bg: #fbe4e6;
}
* { box-sizing: border-box; }
html { font-size: 15px; }
body { margin: 0; background: var(--bg); color: var(--ink);
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "DejaVu Sans",
  sans-serif; line-height: 1.45; }
a { color: var(--brand); text-decoration: none; }
a:hover { text-decoration: underline; }
header.top { display: flex; align-items: center; gap: 2rem; padding: 0 1.5rem;
  height: 3.5rem; background: #16324f; color: #fff; }
.brand { display: flex; align-items: center; gap: .6rem; font-weight: 600;
  font-size: 1.05rem; white-space: nowrap; }
.brand small { font-weight: 400; color: #b9c8d9; margin-left: .3rem; }
.logo { display: inline-grid; place-items: center; width: 1.9rem; height: 1.9rem;
  border-radius: .45rem; background: #3d8bdb; font-weight: 700; }
header nav { display: flex; gap: .25rem; flex: 1; }
header nav a { color: #d7e2ee; padding: .45rem .8rem; border-radius: .4rem; }
header nav a:hover { background: rgba(255,255,255,.08); text-decoration: none; }
header nav a.active { background: rgba(255,255,255,.16); color: #fff; }
form.logout { display: flex; align-items: center; gap: .6rem; margin: 0; }
.who { color: #b9c8d9; font-size: .9rem; }
button.link { background: none; border: 1px solid rgba(255,255,255,.3); color: #fff;
  padding: .3rem .7rem; border-radius: .4rem; cursor: pointer; font: inherit;
  font-size: .9rem; }
main { max-width: 1200px; margin: 0 auto; padding: 1.5rem; }
h1 { font-size: 1.5rem; margin: .3rem 0 1.2rem; }
h2 { font-size: 1.1rem; margin: 1.8rem 0 .7rem; }
.panel > h2:first-child { margin-top: 0; }
footer { text-align: center; color: var(--muted); font-size: .85rem; padding: 2rem 0; }
.panel { background: var(--panel); border: 1px solid var(--line); border-radius: .6rem;
  padding: 1.1rem 1.3rem; margin-bottom: 1.2rem; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(180px, 1fr));
  gap: 1rem; margin-bottom: 1.4rem; }
.card { background: var(--panel); border: 1px solid var(--line); border-radius: .6rem;
  padding: .9rem 1.1rem; }
.card .num { font-size: 1.7rem; font-weight: 650; }
.card .label { color: var(--muted); font-size: .85rem; }
table { width: 100%; border-collapse: collapse; background: var(--panel);
  border: 1px solid var(--line); border-radius: .6rem; overflow: hidden; }
th, td { text-align: left; padding: .55rem .75rem; border-bottom: 1px solid var(--line);
  vertical-align: top; }
th { background: #eef2f6; font-size: .8rem; text-transform: uppercase; letter-spacing: .03em;
  color: var(--muted); font-weight: 600; }
tr:last-child td { border-bottom: none; }
tbody tr:hover td { background: #f8fafc; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.empty { text-align: center; color: var(--muted); padding: 1.5rem; }
code, .mono { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace;
  font-size: .85rem; }
.muted { color: var(--muted); }
.badge { display: inline-block; padding: .1rem .55rem; border-radius: 999px;
  font-size: .8rem; font-weight: 600; white-space: nowrap; }
.badge-ok { color: var(--ok); background: var(--ok-bg); }
.badge-warn { color: var(--warn); background: var(--warn-bg); }
.badge-off { color: var(--off); background: var(--off-bg); }
.badge-bad { color: var(--bad); background: var(--bad-bg); }
.flash { padding: .75rem 1rem; border-radius: .5rem; margin-bottom: 1rem;
  border: 1px solid var(--line); background: var(--panel); }
.flash-ok { border-color: #b5dfc6; background: var(--ok-bg); }
.flash-error { border-color: #efb8bd; background: var(--bad-bg); color: var(--bad); }
form.stack label { display: block; font-weight: 600; font-size: .9rem; margin: .8rem 0 .3rem; }
form.stack .row { display: grid; grid-template-columns: repeat(auto-fit, minmax(200px, 1fr));
  gap: 0 1rem; }
input[type=text], input[type=password], input[type=search], select {
  width: 100%; padding: .5rem .65rem; border: 1px solid #c5ced8; border-radius: .4rem;
  font: inherit; background: #fff; }
input:focus, select:focus { outline: 2px solid #9cc3ee; border-color: var(--brand); }
.btn { display: inline-block; padding: .5rem 1rem; border-radius: .4rem; border: 1px solid
  var(--brand); background: var(--brand); color: var(--brand-ink); font: inherit;
  font-weight: 600; cursor: pointer; }
.btn:hover { filter: brightness(1.08); text-decoration: none; }
.btn-danger { background: var(--bad); border-color: var(--bad); }
.btn-ghost { background: #fff; color: var(--ink); border-color: #c5ced8; }
.btn-small { padding: .25rem .6rem; font-size: .85rem; }
.actions { margin-top: 1.1rem; display: flex; gap: .6rem; align-items: center; }
.token { display: block; width: 100%; padding: .7rem; background: #0f1c2b; color: #d8f3e4;
  border-radius: .4rem; word-break: break-all; white-space: pre-wrap; user-select: all; }
.search { display: flex; gap: .6rem; margin-bottom: 1.2rem; }
.search input { flex: 1; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .4rem 1.2rem;
  margin: 0; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; }
main.narrow { max-width: 400px; padding-top: 4rem; }
main.narrow h1 { text-align: center; }
.tag { display: inline-block; margin-left: .4rem; padding: 0 .4rem; border-radius: .3rem;
  background: #e6eefb; color: var(--brand); font-size: .75rem; font-weight: 600;
  vertical-align: middle; }
pre.json { background: #0f1c2b; color: #dbe7f3; padding: 1rem; border-radius: .5rem;
  overflow: auto; font-size: .8rem; }
"""
