// EdgePulse dashboard. Plain browser JavaScript, no build step, no dependencies, no
// network access beyond this ep-api: the API key lives in sessionStorage and goes out
// as X-API-Key. Every string from the API is inserted as text, never as HTML.
'use strict';

const KEY = 'edgepulse.api_key';
const $ = (sel) => document.querySelector(sel);
const view = () => $('#view');

// ---- DOM helpers ----
function h(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const k of kids.flat()) if (k !== null && k !== undefined && k !== false) e.append(k instanceof Node ? k : String(k));
  return e;
}
const SVG = 'http://www.w3.org/2000/svg';
function s(tag, attrs, ...kids) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== null && v !== undefined) e.setAttribute(k, v);
  for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  return e;
}
const fmtTime = (t) => (t ? new Date(t).toISOString().replace('T', ' ').slice(0, 19) + 'Z' : '—');
function ago(t) {
  if (!t) return 'never';
  const d = (Date.now() - new Date(t).getTime()) / 1000;
  if (d < 90) return `${Math.max(0, Math.round(d))} s ago`;
  if (d < 5400) return `${Math.round(d / 60)} min ago`;
  if (d < 172800) return `${Math.round(d / 3600)} h ago`;
  return `${Math.round(d / 86400)} d ago`;
}
const num = (v, digits = 2) => (v === null || v === undefined ? '—' : Number(v).toLocaleString(undefined, { maximumFractionDigits: digits }));
const pill = (text) => h('span', { class: `pill ${text}` }, text);
function table(headers, rows, empty = 'Nothing yet.') {
  if (!rows.length) return h('p', { class: 'empty' }, empty);
  return h('table', {}, h('thead', {}, h('tr', {}, headers.map((x) => h('th', { class: x.startsWith('#') ? 'num' : null }, x.replace(/^#/, ''))))),
    h('tbody', {}, rows));
}
const td = (v, cls) => h('td', { class: cls }, v);

// ---- API ----
class AuthError extends Error {}
async function api(path) {
  const res = await fetch(path, { headers: { 'X-API-Key': sessionStorage.getItem(KEY) || '' } });
  let body = null;
  try { body = await res.json(); } catch (e) { /* not JSON */ }
  if (res.status === 401) throw new AuthError((body && body.details) || 'unauthorized');
  if (!res.ok) throw new Error(`${path}: ${res.status} ${(body && (body.details || body.detail)) || res.statusText}`);
  return body;
}

// ---- sign in ----
function showSignin(message) {
  sessionStorage.removeItem(KEY);
  $('#signin').hidden = false;
  $('#nav').hidden = true;
  $('#signout').hidden = true;
  $('#who').textContent = '';
  view().replaceChildren();
  $('#signin-error').textContent = message || '';
  $('#api-key').focus();
}
async function signin(ev) {
  ev.preventDefault();
  const key = $('#api-key').value.trim();
  sessionStorage.setItem(KEY, key);
  try {
    await api('/v1/me');
  } catch (e) {
    showSignin(e instanceof AuthError ? 'That key was not accepted.' : e.message);
    return;
  }
  $('#api-key').value = '';
  route();
}

// ---- pages ----
async function overview() {
  const [metrics, anomalies, batches, devices] = await Promise.all([
    api('/v1/metrics?limit=1000'), api('/v1/anomalies?limit=20'), api('/v1/batches?limit=10'), api('/v1/devices?limit=1000')]);
  const sum = batches.summary;
  const pointsPerMin = metrics.items.reduce((a, m) => a + m.points_last_hour, 0) / 60;
  const stat = (k, v, bad) => h('div', { class: `stat${bad ? ' bad' : ''}` }, h('div', { class: 'v' }, v), h('div', { class: 'k' }, k));
  return [
    h('h1', {}, 'Overview'),
    h('div', { class: 'stats' },
      stat('devices', num(devices.items.length, 0)), stat('metrics', num(metrics.items.length, 0)),
      stat('points / min (last hour)', num(pointsPerMin, 1)),
      stat('batches loaded (24 h)', num(sum.loaded, 0)), stat('batches failed (24 h)', num(sum.failed, 0), sum.failed > 0),
      stat('awaiting load', num(sum.received, 0), sum.received > 0), stat('last batch', ago(sum.last_received_at))),
    h('section', { class: 'card', id: 'recent-anomalies' }, h('h2', {}, 'Recent anomalies'),
      table(['end', 'device', 'metric', 'label', '#score', 'model'], anomalies.items.map((a) => h('tr', {},
        td(fmtTime(a.end)), td(a.device), td(h('a', { href: `#/metric/${a.metric_id}` }, a.metric)), td(pill(a.label)), td(num(a.score, 3), 'num'), td(a.model, 'muted'))),
      'No anomalies.')),
    h('section', { class: 'card', id: 'metrics' }, h('h2', {}, 'Metrics'),
      table(['device', 'metric', 'unit', 'last seen', '#points / min', '#anomalies 24 h'], metrics.items.map((m) => h('tr', { 'data-metric': m.metric_id },
        td(m.device), td(h('a', { href: `#/metric/${m.metric_id}` }, m.name)), td(m.unit, 'muted'), td(ago(m.last_seen)),
        td(num(m.points_last_hour / 60, 1), 'num'), td(m.anomalies_24h ? pill(String(m.anomalies_24h)) : '0', 'num'))),
      'No metrics yet: send data to ep-ingest.')),
    h('section', { class: 'card', id: 'batches' }, h('h2', {}, 'Ingestion'),
      table(['received', 'device', 'source', '#points', 'status', 'error'], batches.items.map((b) => h('tr', {},
        td(fmtTime(b.received_at)), td(b.device || '—'), td(b.source), td(num(b.points, 0), 'num'), td(pill(b.status === 'loaded' ? 'ok' : b.status)), td(b.error || '', 'muted'))))),
  ];
}

const RANGES = { '6h': 6, '24h': 24, '7d': 168, '30d': 720 };
async function metricPage(id, params) {
  const range = RANGES[params.get('range')] ? params.get('range') : null;
  const width = Math.max(600, Math.min(2400, Math.round(view().clientWidth || 1000)));
  let q = `/v1/series?metric_id=${encodeURIComponent(id)}&max_points=${width}`;
  if (range) q += `&from=${range}`;
  const [m, series, alerts] = await Promise.all([api(`/v1/metrics/${encodeURIComponent(id)}`), api(q),
    api(`/v1/alerts?metric_id=${encodeURIComponent(id)}&limit=50`)]);
  const explain = h('div', { class: 'explain', id: 'explanation' }, h('p', { class: 'muted' }, 'Hover or click a shaded window to see why it was flagged.'));
  const flagged = series.scores.filter((x) => x.anomaly);
  return [
    h('h1', {}, `${m.device} / ${m.name}`, m.unit ? h('span', { class: 'muted' }, ` (${m.unit})`) : null),
    h('div', { class: 'row' },
      ...Object.keys(RANGES).map((r) => h('button', { class: `ghost${r === range ? ' on' : ''}`, onclick: () => { location.hash = `#/metric/${id}?range=${r}`; } }, r)),
      h('span', { class: 'muted' }, `${num(series.total_points, 0)} points${series.downsampled ? `, ${num(series.points.length, 0)} drawn (LTTB)` : ''}; ` +
        `${flagged.length} flagged window${flagged.length === 1 ? '' : 's'}; last seen ${ago(m.last_seen)}`)),
    h('section', { class: 'card' }, chart(series, explain), explain),
    h('section', { class: 'card', id: 'metric-alerts' }, h('h2', {}, 'Alerts sent'), alertsTable(alerts.items)),
  ];
}

// Values on top, scores below, flagged windows shaded across both with their label.
function chart(series, explain) {
  const W = 1000, H = 360, L = 56, R = 12, T = 18, VH = 230, SG = 24, SH = 70;
  const t0 = new Date(series.from).getTime(), t1 = new Date(series.to).getTime();
  const x = (t) => L + ((t - t0) / Math.max(1, t1 - t0)) * (W - L - R);
  const vals = series.points.map((p) => p[1]);
  let lo = Math.min(...vals), hi = Math.max(...vals);
  if (!isFinite(lo)) { lo = 0; hi = 1; }
  if (hi === lo) { hi += 1; lo -= 1; }
  const pad = (hi - lo) * 0.06; lo -= pad; hi += pad;
  const y = (v) => T + VH - ((v - lo) / (hi - lo)) * VH;
  const sy0 = T + VH + SG, ys = (v) => sy0 + SH - v * SH;
  const svg = s('svg', { class: 'chart', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': 'values and anomaly scores over time', id: 'chart' });
  for (let i = 0; i <= 4; i++) {
    const v = lo + ((hi - lo) * i) / 4;
    svg.append(s('line', { class: 'grid', x1: L, x2: W - R, y1: y(v), y2: y(v) }), s('text', { class: 'tick', x: L - 6, y: y(v) + 4, 'text-anchor': 'end' }, num(v, 2)));
  }
  for (let i = 0; i <= 5; i++) {
    const t = t0 + ((t1 - t0) * i) / 5;
    svg.append(s('text', { class: 'tick', x: x(t), y: H - 4, 'text-anchor': i === 0 ? 'start' : i === 5 ? 'end' : 'middle' }, fmtTime(t).slice(5, 16)));
  }
  svg.append(s('line', { class: 'axis', x1: L, x2: W - R, y1: T + VH, y2: T + VH }),
    s('line', { class: 'axis', x1: L, x2: W - R, y1: sy0 + SH, y2: sy0 + SH }),
    s('text', { class: 'tick', x: L - 6, y: sy0 + 8, 'text-anchor': 'end' }, 'score 1'),
    s('text', { class: 'tick', x: L - 6, y: sy0 + SH, 'text-anchor': 'end' }, '0'));
  // Flagged windows first, so lines draw over the shading.
  const select = (rect, sc) => {
    svg.querySelectorAll('.flag.sel').forEach((e) => e.classList.remove('sel'));
    rect.classList.add('sel');
    explain.replaceChildren(explanation(sc));
  };
  for (const sc of series.scores.filter((z) => z.anomaly)) {
    const xa = Math.max(L, x(new Date(sc.start).getTime())), xb = Math.min(W - R, x(new Date(sc.end).getTime()));
    const w = Math.max(3, xb - xa);
    const rect = s('rect', { class: 'flag', x: xa - (w - (xb - xa)) / 2, y: T, width: w, height: sy0 + SH - T,
      'data-label': sc.label, 'data-start': sc.start, 'data-end': sc.end, 'data-score': sc.score, tabindex: 0 });
    rect.addEventListener('mouseenter', (ev) => showTip(ev, sc));
    rect.addEventListener('mousemove', (ev) => moveTip(ev));
    rect.addEventListener('mouseleave', hideTip);
    rect.addEventListener('click', () => select(rect, sc));
    rect.addEventListener('keydown', (ev) => { if (ev.key === 'Enter') select(rect, sc); });
    svg.append(rect, s('text', { class: 'flag-label', x: xa + w / 2, y: T - 5, 'text-anchor': 'middle' }, sc.label));
  }
  if (series.points.length) {
    svg.append(s('path', { class: 'value', d: series.points.map((p, i) => `${i ? 'L' : 'M'}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join('') }));
  }
  if (series.scores.length) {
    const d = series.scores.map((sc, i) => { const t = new Date(sc.end).getTime(); return `${i ? 'L' : 'M'}${x(t).toFixed(1)},${ys(sc.score).toFixed(1)}`; }).join('');
    svg.append(s('path', { class: 'score', d }));
  }
  return svg;
}

function explanationTable(sc) {
  const ex = Array.isArray(sc.explanation) ? sc.explanation : [];
  return ex.length ? table(['feature', '#value', '#baseline', '#z'], ex.map((e) => h('tr', {},
    td(e.feature), td(num(e.value, 3), 'num'), td(num(e.baseline, 3), 'num'), td(num(e.z, 2), 'num')))) : h('p', {}, 'No feature explanation recorded.');
}
function explanation(sc) {
  return h('div', {}, h('h2', {}, pill(sc.label), ` ${fmtTime(sc.start)} – ${fmtTime(sc.end)}, score ${num(sc.score, 3)} `, h('span', { class: 'muted' }, sc.model)), explanationTable(sc));
}
function showTip(ev, sc) {
  const tip = $('#tip');
  tip.replaceChildren(h('div', {}, h('strong', {}, sc.label), ` score ${num(sc.score, 3)}`), h('div', {}, `${fmtTime(sc.start)} – ${fmtTime(sc.end)}`), explanationTable(sc));
  tip.hidden = false;
  moveTip(ev);
}
function moveTip(ev) {
  const tip = $('#tip');
  tip.style.left = `${Math.min(window.innerWidth - 350, ev.clientX + 14)}px`;
  tip.style.top = `${ev.clientY + 14}px`;
}
function hideTip() { $('#tip').hidden = true; }

function alertsTable(items) {
  return table(['created', 'device / metric', 'rule', 'webhook', 'label', '#score', 'status', '#attempts', 'last response'], items.map((a) => h('tr', { 'data-alert': a.alert_id },
    td(fmtTime(a.created_at)), td(a.metric_id ? h('a', { href: `#/metric/${a.metric_id}` }, `${a.device || '?'} / ${a.metric || '?'}`) : '—'),
    td(a.rule || '—'), td(a.webhook || '—'), td(pill(a.label)), td(num(a.score, 3), 'num'), td(pill(a.status)),
    td(String(a.attempts), 'num'),
    td(a.attempt_log.length ? h('details', {}, h('summary', {}, a.error || (a.http_status ? `HTTP ${a.http_status}` : '')),
      table(['#', 'at', '#HTTP', 'error', '#ms'], a.attempt_log.map((t) => h('tr', {}, td(String(t.attempt)), td(fmtTime(t.attempted_at)),
        td(t.http_status ?? '—', 'num'), td(t.error || ''), td(t.duration_ms ?? '—', 'num'))))) : (a.error || ''), 'muted'))),
  'No alerts sent.');
}

async function alertsPage(params) {
  const status = params.get('status') || '';
  const data = await api(`/v1/alerts?limit=200${status ? `&status=${encodeURIComponent(status)}` : ''}`);
  return [h('h1', {}, 'Alerts'),
    h('div', { class: 'row' }, ...['', 'delivered', 'failed', 'pending', 'suppressed'].map((st) =>
      h('button', { class: `ghost${st === status ? ' on' : ''}`, onclick: () => { location.hash = st ? `#/alerts?status=${st}` : '#/alerts'; } }, st || 'all'))),
    h('section', { class: 'card' }, alertsTable(data.items))];
}

function trainingRange(meta) {
  const from = meta.train_from || meta.from || meta.training_from || (meta.training && meta.training.from);
  const to = meta.train_to || meta.to || meta.training_to || (meta.training && meta.training.to);
  if (from || to) return `${fmtTime(from)} – ${fmtTime(to)}`;
  return meta.windows ? `${meta.windows} windows` : '—';
}
async function modelsPage() {
  const data = await api('/v1/models?limit=500');
  return [h('h1', {}, 'Models'), h('section', { class: 'card' }, table(['name', '#version', 'kind', 'trained', 'training range', '#threshold', 'active', 'sha256'],
    data.items.map((m) => h('tr', {}, td(m.metric_id ? h('a', { href: `#/metric/${m.metric_id}` }, m.name) : m.name), td(String(m.version), 'num'), td(m.kind),
      td(fmtTime(m.trained_at)), td(trainingRange(m.meta || {})), td(num(m.threshold, 3), 'num'), td(m.active ? pill('ok') : h('span', { class: 'muted' }, 'no')),
      td(h('code', {}, m.sha256.slice(0, 12))))), 'No models trained yet.'))];
}

// ---- router ----
async function route() {
  hideTip();
  if (!sessionStorage.getItem(KEY)) return showSignin();
  $('#signin').hidden = true;
  $('#nav').hidden = false;
  $('#signout').hidden = false;
  const [path, query] = (location.hash.slice(1) || '/').split('?');
  const params = new URLSearchParams(query || '');
  const parts = path.split('/').filter(Boolean);
  const page = parts[0] || 'overview';
  document.querySelectorAll('#nav a').forEach((a) => a.classList.toggle('active', a.dataset.page === page));
  view().replaceChildren(h('p', { class: 'muted' }, 'Loading…'));
  const started = performance.now();
  try {
    const me = await api('/v1/me');
    $('#who').textContent = me.tenant;
    let content;
    if (page === 'metric' && parts[1]) content = await metricPage(parts[1], params);
    else if (page === 'alerts') content = await alertsPage(params);
    else if (page === 'models') content = await modelsPage();
    else content = await overview();
    view().replaceChildren(...content);
    view().dataset.rendered = page;
    view().dataset.renderMs = String(Math.round(performance.now() - started));
  } catch (e) {
    if (e instanceof AuthError) return showSignin('Your key is no longer accepted; sign in again.');
    view().replaceChildren(h('section', { class: 'card' }, h('p', { class: 'error' }, e.message)));
  }
}

document.addEventListener('DOMContentLoaded', () => {
  $('#signin-form').addEventListener('submit', signin);
  $('#signout').addEventListener('click', () => { showSignin('Signed out.'); location.hash = '#/'; });
  window.addEventListener('hashchange', route);
  route();
});
