// The bk-supervisor dashboard: plain browser JavaScript, no framework, no build step, nothing
// loaded from elsewhere. It talks to the daemon that served it, with the session cookie:
//
//   GET /api/graph            layout: units by dependency level, edges with their condition
//   GET /api/units            the full rows (restarts, health); refreshed after events and every 2 s
//   WS  /api/events           snapshot, then every state change (applied to the DOM at once, so
//                             each state shows, however briefly) and verify results
//   WS  /api/logs             history + live lines of the chosen units; `gap` frames become rows
//   POST /api/units/:u/:act   the buttons (stop asks first)
//
// The log view holds up to MAX_LINES lines and renders only the rows in sight (a spacer gives
// the scroll height, a pool of row elements is refilled on scroll), so 100,000 lines cost no
// more to show than 40. Log text only ever goes into textContent: a line can never become markup.

/* global HTMLButtonElement, Element, URLSearchParams */

const $ = (id) => document.getElementById(id);
const SVG = 'http://www.w3.org/2000/svg';

const STATES = ['healthy', 'completed', 'skipped', 'running', 'starting', 'pending', 'backoff', 'unhealthy', 'failed', 'stopping', 'stopped', 'disabled'];
const UP_STATES = new Set(['starting', 'running', 'healthy', 'unhealthy']);
const SATISFIES = {
  started: ['running', 'healthy', 'unhealthy', 'completed', 'skipped'],
  healthy: ['healthy', 'completed', 'skipped'],
  completed: ['completed', 'skipped'],
};
const DEAD_END = new Set(['failed', 'stopped']);

// ------------------------------------------------------------------ small helpers

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

function svg(tag, attrs = {}) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
}

function formatDuration(ms) {
  if (!(ms >= 0)) return '-';
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h ${String(m % 60).padStart(2, '0')}m`;
  return `${Math.floor(h / 24)}d ${h % 24}h`;
}

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
function formatTime(ts) {
  const d = new Date(ts);
  return `${timeFmt.format(d)}.${String(d.getMilliseconds()).padStart(3, '0')}`;
}

function truncate(text, n) {
  return text.length > n ? `${text.slice(0, n - 1)}…` : text;
}

/** A unit keeps its colour: derived from its name. */
function unitHue(name) {
  let h = 0;
  for (let i = 0; i < name.length; i++) h = (h * 31 + name.charCodeAt(i)) >>> 0;
  return h % 360;
}

function toast(text, bad = false) {
  const t = el('div', { class: bad ? 'toast bad' : 'toast', text });
  $('toasts').append(t);
  setTimeout(() => t.remove(), bad ? 8000 : 3500);
}

function wsUrl(path) {
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${path}`;
}

// ------------------------------------------------------------------ the model

/** name → snapshot row (plus lastError, signal). */
const units = new Map();
let order = [];
let graph = { levels: [], edges: [] };
let sessionEnded = false;

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function api(method, path) {
  const res = await fetch(path, { method, credentials: 'same-origin', headers: { accept: 'application/json' } });
  const text = await res.text();
  let body;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = text;
  }
  if (res.status === 401) endSession();
  if (!res.ok) throw new ApiError(res.status, body && typeof body.error === 'string' ? body.error : `HTTP ${res.status}`);
  return body;
}

function endSession() {
  if (sessionEnded) return;
  sessionEnded = true;
  const b = $('banner');
  b.textContent = 'This browser is no longer logged in (the supervisor restarted, or the session ended). Run npx bksup dashboard in the project directory and open the new link.';
  b.hidden = false;
  setConn('ended', 'logged out');
  events.stop();
  logs.stop();
}

function setConn(state, text) {
  const c = $('conn');
  c.dataset.state = state;
  c.textContent = text;
}

/** Merges a snapshot row, keeping what only the page remembers. */
function mergeUnit(row) {
  const old = units.get(row.name);
  const u = { ...row, lastError: old?.lastError, signal: old?.signal };
  // Failures before the first pass are a unit coming up; after it, they are worth remembering.
  const failing = typeof row.health === 'string' && row.health.startsWith('failing');
  if (failing && (row.state === 'healthy' || row.state === 'unhealthy')) u.lastError = { text: row.health.replace(/^failing: /, ''), ts: Date.now() };
  units.set(row.name, u);
  return u;
}

async function refreshUnits() {
  try {
    const rows = await api('GET', '/api/units');
    const names = rows.map((r) => r.name);
    const changed = names.join('\n') !== order.join('\n');
    for (const r of rows) mergeUnit(r);
    for (const n of [...units.keys()]) if (!names.includes(n)) units.delete(n);
    if (changed) {
      order = names;
      await loadGraph();
      buildAll();
    } else {
      for (const n of order) updateUnit(n);
    }
  } catch (err) {
    if (!(err instanceof ApiError)) setConn('reconnecting', 'supervisor not reachable');
  }
}

let refreshTimer;
/** State events lack restarts and health: fetch the rows soon after a burst of them. */
function scheduleRefresh(ms = 250) {
  if (refreshTimer) return;
  refreshTimer = setTimeout(() => {
    refreshTimer = undefined;
    void refreshUnits();
  }, ms);
}

async function loadGraph() {
  try {
    graph = await api('GET', '/api/graph');
  } catch {
    graph = { levels: [order], edges: [] };
  }
}

// ------------------------------------------------------------------ events stream

class EventsStream {
  #ws;
  #retry = 500;
  #timer;
  #stopped = false;

  start() {
    this.#stopped = false;
    this.#connect();
  }

  stop() {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#ws?.close();
  }

  #connect() {
    if (this.#stopped) return;
    const ws = new WebSocket(wsUrl('/api/events'));
    this.#ws = ws;
    ws.onmessage = (m) => {
      let frame;
      try {
        frame = JSON.parse(m.data);
      } catch {
        return;
      }
      this.#retry = 500;
      onEvent(frame);
    };
    ws.onopen = () => setConn('live', 'live');
    ws.onclose = () => {
      if (this.#stopped || this.#ws !== ws) return;
      setConn('reconnecting', 'reconnecting…');
      // A refused upgrade looks like any close: ask the API whether the session still holds.
      void api('GET', '/api/units').catch(() => undefined);
      this.#timer = setTimeout(() => this.#connect(), this.#retry);
      this.#retry = Math.min(this.#retry * 2, 5000);
    };
  }
}

function onEvent(frame) {
  switch (frame.type) {
    case 'snapshot': {
      const names = frame.units.map((u) => u.name);
      const changed = names.join('\n') !== order.join('\n');
      for (const u of frame.units) mergeUnit(u);
      for (const n of [...units.keys()]) if (!names.includes(n)) units.delete(n);
      order = names;
      if (frame.verify) renderVerify(frame.verify);
      renderReload(frame.reload);
      if (changed || !graphBuilt) void loadGraph().then(buildAll);
      else for (const n of order) updateUnit(n);
      logs.unitsKnown(order);
      return;
    }
    case 'state': {
      const u = units.get(frame.unit);
      if (!u) return scheduleRefresh(0);
      u.state = frame.state;
      u.since = frame.ts;
      u.pid = frame.pid ?? null;
      if ('exitCode' in frame) u.exitCode = frame.exitCode;
      if ('signal' in frame) u.signal = frame.signal;
      u.reason = frame.reason ?? null;
      // The daemon marks a probed unit passing as it turns healthy; the row fetch comes later.
      if (frame.state === 'healthy' && u.health !== null && u.health !== undefined) u.health = 'passing';
      // At once, not on the next frame: a state that lasts a few ms still shows.
      updateUnit(frame.unit);
      scheduleRefresh();
      return;
    }
    case 'verify':
      renderVerify(frame);
      return;
    case 'reload':
      renderReload(frame);
      // Units may have come, gone or changed their dependencies: lay the graph out again.
      if (frame.ok) void refreshUnits().then(loadGraph).then(buildAll);
      return;
    default:
  }
}

// ------------------------------------------------------------------ graph

/** Node width: set per graph from its longest name (see nodeWidth), within these bounds. */
const NODE_W_MIN = 150;
const NODE_W_MAX = 240;
let NODE_W = 196;
const NODE_H = 66;
const GAP_X = 76;
const SLOT_REAL = 84;
/** A long edge passes each column in between through a thin slot of its own (no node hides it). */
const SLOT_VIRTUAL = 16;
const PAD = 12;
let graphBuilt = false;

/** Width of `text` in `font` as the page draws it (canvas measurement: no layout pass). */
const measureCtx = document.createElement('canvas').getContext('2d');
function textWidth(text, font) {
  measureCtx.font = font;
  return measureCtx.measureText(text).width;
}
let fontFamily;
function graphFont(size, weight = 400) {
  fontFamily ??= window.getComputedStyle(document.body).fontFamily;
  return `${weight} ${size}px ${fontFamily}`;
}

/**
 * Nodes as narrow as the names allow (name, then the kind at the right), so that a graph of
 * BK-Lite's size fits a laptop-wide panel at full size: it is never scaled down (its 11 px
 * labels would not stay legible).
 */
function nodeWidth(names) {
  const nameFont = graphFont(13, 600);
  const kindFont = graphFont(11);
  let w = NODE_W_MIN;
  for (const n of names) {
    const u = units.get(n);
    const kind = (u?.kind ?? 'process') + (u?.adopted ? ' · adopted' : '');
    w = Math.max(w, 10 + textWidth(n, nameFont) + 12 + textWidth(kind, kindFont) + 8);
  }
  return Math.ceil(Math.min(NODE_W_MAX, w));
}

/** `text` cut (with …) to fit `maxW` px in `font`. */
function fitText(text, font, maxW) {
  if (textWidth(text, font) <= maxW) return text;
  let lo = 0;
  let hi = text.length;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (textWidth(`${text.slice(0, mid)}…`, font) <= maxW) lo = mid;
    else hi = mid - 1;
  }
  return `${text.slice(0, lo)}…`;
}
const nodeEls = new Map();
const edgeEls = [];

/**
 * Layered layout: columns are dependency levels; an edge that skips levels gets a virtual point
 * in every column it crosses; each column is ordered by the mean position of what feeds it
 * (fewer crossings), then stacked and centred.
 */
function layout(levels, edges) {
  const levelOf = new Map();
  levels.forEach((l, i) => l.forEach((n) => levelOf.set(n, i)));
  const cols = levels.map((l) => l.map((n) => ({ id: n, real: true, preds: [] })));
  const byId = new Map(cols.flat().map((x) => [x.id, x]));
  const chains = [];
  for (const e of edges) {
    const a = levelOf.get(e.from);
    const b = levelOf.get(e.to);
    if (a === undefined || b === undefined || b <= a) continue;
    const chain = [e.from];
    for (let l = a + 1; l < b; l++) {
      const v = { id: `${e.from}->${e.to}@${l}`, real: false, preds: [chain[chain.length - 1]] };
      cols[l].push(v);
      byId.set(v.id, v);
      chain.push(v.id);
    }
    byId.get(e.to).preds.push(chain[chain.length - 1]);
    chain.push(e.to);
    chains.push({ edge: e, chain });
  }
  const index = new Map();
  cols.forEach((col, i) => {
    if (i > 0) {
      const key = (x) => (x.preds.length ? x.preds.reduce((sum, p) => sum + (index.get(p) ?? 0), 0) / x.preds.length : Number.MAX_SAFE_INTEGER);
      const keyed = col.map((x, k) => ({ x, k, key: key(x) }));
      keyed.sort((p, q) => p.key - q.key || p.k - q.k);
      cols[i] = keyed.map((p) => p.x);
    }
    cols[i].forEach((x, k) => index.set(x.id, k));
  });
  const heights = cols.map((col) => col.reduce((h, x) => h + (x.real ? SLOT_REAL : SLOT_VIRTUAL), 0));
  const maxH = Math.max(SLOT_REAL, ...heights);
  const pos = new Map();
  cols.forEach((col, i) => {
    let y = PAD + (maxH - heights[i]) / 2;
    for (const x of col) {
      const h = x.real ? SLOT_REAL : SLOT_VIRTUAL;
      pos.set(x.id, { x: PAD + i * (NODE_W + GAP_X), y: x.real ? y + (SLOT_REAL - NODE_H) / 2 : y + h / 2, real: x.real });
      y += h;
    }
  });
  return { pos, chains, width: PAD * 2 + Math.max(1, cols.length) * (NODE_W + GAP_X) - GAP_X, height: PAD * 2 + maxH };
}

function buildGraph() {
  const g = $('graph');
  g.replaceChildren();
  nodeEls.clear();
  edgeEls.length = 0;
  const known = new Set(order);
  const levels = graph.levels.map((l) => l.filter((n) => known.has(n))).filter((l) => l.length > 0);
  NODE_W = nodeWidth(order);
  const { pos, chains, width, height } = layout(levels, graph.edges.filter((e) => known.has(e.from) && known.has(e.to)));
  g.setAttribute('width', width);
  g.setAttribute('height', height);
  g.setAttribute('viewBox', `0 0 ${width} ${height}`);

  const defs = svg('defs');
  const marker = svg('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' });
  marker.append(svg('path', { d: 'M 0 0 L 10 5 L 0 10 z', fill: '#7a8499' }));
  defs.append(marker);
  g.append(defs);

  // Several edges at one node leave/enter at spread-out heights, in the order of their other end.
  const ports = (list, end) => {
    const by = new Map();
    for (const c of list) {
      const key = end === 'out' ? c.chain[0] : c.chain[c.chain.length - 1];
      const other = end === 'out' ? c.chain[1] : c.chain[c.chain.length - 2];
      if (!by.has(key)) by.set(key, []);
      by.get(key).push({ c, oy: pos.get(other).y });
    }
    const out = new Map();
    for (const [key, arr] of by) {
      arr.sort((p, q) => p.oy - q.oy);
      arr.forEach(({ c }, i) => out.set(c, pos.get(key).y + (NODE_H * (i + 1)) / (arr.length + 1)));
    }
    return out;
  };
  const outY = ports(chains, 'out');
  const inY = ports(chains, 'in');
  const curve = (x1, y1, x2, y2) => {
    const dx = (x2 - x1) / 2;
    return `C ${x1 + dx} ${y1}, ${x2 - dx} ${y2}, ${x2} ${y2}`;
  };

  const edgeLayer = svg('g', { class: 'edges' });
  const labelLayer = svg('g', { class: 'edge-labels' });
  for (const c of chains) {
    const { edge: e, chain } = c;
    const first = pos.get(chain[0]);
    const last = pos.get(chain[chain.length - 1]);
    let x = first.x + NODE_W;
    let y = outY.get(c);
    let d = `M ${x} ${y}`;
    for (const id of chain.slice(1, -1)) {
      const v = pos.get(id);
      d += ` ${curve(x, y, v.x, v.y)} L ${v.x + NODE_W} ${v.y}`;
      x = v.x + NODE_W;
      y = v.y;
    }
    const ty = inY.get(c);
    const tx = last.x - 2;
    d += ` ${curve(x, y, tx, ty)}`;
    const group = svg('g', { class: 'edge', 'data-from': e.from, 'data-to': e.to });
    const title = svg('title');
    title.textContent = `${e.to} needs ${e.from} ${e.condition}`;
    group.append(title, svg('path', { d, 'marker-end': 'url(#arrow)' }));
    edgeLayer.append(group);
    // The label sits just before the arrow, at this edge's own entry height: labels of edges
    // into one unit stack up instead of piling onto each other in the middle of the gap.
    const w = e.condition.length * 6.2 + 6; // 11 px text
    const lx = tx - 8 - w / 2;
    const ly = ty;
    const label = svg('g', { class: 'edge', 'data-from': e.from, 'data-to': e.to });
    label.append(svg('rect', { x: lx - w / 2, y: ly - 6.5, width: w, height: 13, rx: 3 }));
    const t = svg('text', { x: lx, y: ly + 3.5, 'text-anchor': 'middle' });
    t.textContent = e.condition;
    label.append(t);
    labelLayer.append(label);
    edgeEls.push({ edge: e, els: [group, label] });
  }
  g.append(edgeLayer, labelLayer);

  for (const name of order) {
    const p = pos.get(name);
    if (!p) continue;
    const node = svg('g', { class: 'node', 'data-unit': name, transform: `translate(${p.x} ${p.y})`, tabindex: 0 });
    const title = svg('title');
    const box = svg('rect', { class: 'box', width: NODE_W, height: NODE_H, rx: 9 });
    const nameT = svg('text', { class: 'name', x: 10, y: 18 });
    nameT.textContent = name;
    const kindT = svg('text', { class: 'kind', x: NODE_W - 8, y: 17, 'text-anchor': 'end' });
    const line2 = svg('text', { class: 'line2', x: 10, y: 38 });
    const line3 = svg('text', { class: 'line3', x: 10, y: 56 });
    node.append(title, box, nameT, kindT, line2, line3);
    node.addEventListener('click', () => select(name));
    node.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter') select(name);
    });
    g.append(node);
    nodeEls.set(name, { node, title, kindT, line2, line3 });
  }
  graphBuilt = true;
  for (const n of order) updateNode(n);
  updateEdges();
}

function nodeDetail(u) {
  if (['pending', 'failed', 'backoff', 'stopped', 'skipped'].includes(u.state) && u.reason) return u.reason.split('\n')[0];
  if (typeof u.health === 'string' && u.health.startsWith('failing')) return u.health;
  if (u.reason) return u.reason.split('\n')[0];
  if (UP_STATES.has(u.state)) return `up ${formatDuration(Date.now() - u.since)}${u.restarts ? ` · ${u.restarts} restarts` : ''}`;
  return '';
}

function updateNode(name) {
  const u = units.get(name);
  const n = nodeEls.get(name);
  if (!u || !n) return;
  n.node.dataset.state = u.state;
  n.node.dataset.pid = u.pid === null ? '' : String(u.pid);
  n.kindT.textContent = u.kind + (u.adopted ? ' · adopted' : '');
  n.line2.textContent = u.pid !== null ? `${u.state} · pid ${u.pid}` : u.state;
  const detail = nodeDetail(u);
  n.line3.textContent = fitText(detail, graphFont(11), NODE_W - 18);
  n.title.textContent = `${name} (${u.kind}): ${u.state}${u.pid !== null ? `, pid ${u.pid}` : ''}${detail ? `\n${detail}` : ''}`;
}

function updateEdges() {
  for (const { edge, els } of edgeEls) {
    const dep = units.get(edge.from);
    const state = dep ? dep.state : 'pending';
    // A failed optional task still lets `completed` dependents go on (the supervisor's rule).
    const tolerated = dep && dep.optional && state === 'failed' && edge.condition === 'completed';
    const met = dep && (dep.state === 'disabled' || tolerated || (SATISFIES[edge.condition] ?? []).includes(state));
    const cls = met ? 'met' : DEAD_END.has(state) ? 'blocked' : 'waiting';
    for (const e of els) e.setAttribute('class', `edge ${cls}`);
  }
}

function select(name) {
  for (const [n, x] of nodeEls) x.node.classList.toggle('selected', n === name);
  for (const tr of $('units').tBodies[0].rows) tr.classList.toggle('selected', tr.dataset.unit === name);
  const row = rowEls.get(name);
  if (row) row.tr.scrollIntoView({ block: 'nearest', behavior: 'smooth' });
}

function renderLegend() {
  const l = $('legend');
  l.replaceChildren(...STATES.map((s) => el('span', {}, el('i', { 'data-state': s }), s)));
}

// ------------------------------------------------------------------ units table

const rowEls = new Map();

function buildTable() {
  const body = $('units').tBodies[0];
  body.replaceChildren();
  rowEls.clear();
  for (const name of order) {
    const cell = (cls) => el('td', { class: cls });
    const tr = el('tr', { 'data-unit': name });
    const nameTd = cell('name');
    nameTd.append(el('span', { text: name }), el('span', { class: 'kind' }));
    const stateTd = cell('state');
    const pill = el('span', { class: 'pill' });
    stateTd.append(pill);
    const pid = cell('num pid');
    const uptime = cell('num uptime');
    const restarts = cell('num restarts');
    const exit = cell('num exit');
    const health = cell('health');
    const why = cell('why');
    const actions = cell('actions');
    for (const action of ['start', 'stop', 'restart']) {
      actions.append(el('button', { type: 'button', 'data-unit': name, 'data-action': action, text: action[0].toUpperCase() + action.slice(1), onclick: () => act(name, action) }));
    }
    actions.append(el('button', { type: 'button', 'data-unit': name, 'data-action': 'logs', title: `show only ${name} in the logs below`, text: 'Logs', onclick: () => logs.only(name) }));
    tr.append(nameTd, stateTd, pid, uptime, restarts, exit, health, why, actions);
    tr.addEventListener('click', (ev) => {
      if (!(ev.target instanceof HTMLButtonElement)) select(name);
    });
    body.append(tr);
    rowEls.set(name, { tr, kind: nameTd.lastChild, pill, pid, uptime, restarts, exit, health, why, actions });
  }
}

function healthCell(td, u) {
  td.replaceChildren();
  if (u.health === null || u.health === undefined) {
    td.append(el('span', { class: 'muted', text: 'no healthcheck' }));
  } else if (u.health === 'passing') {
    td.append(el('span', { class: 'good', text: 'passing' }));
  } else {
    td.append(el('span', { class: 'bad', text: u.health }));
  }
  if (u.lastError && u.health === 'passing') {
    td.append(el('span', { class: 'last-error', text: `last probe error ${formatDuration(Date.now() - u.lastError.ts)} ago: ${truncate(u.lastError.text, 200)}` }));
  }
}

function updateRow(name) {
  const u = units.get(name);
  const r = rowEls.get(name);
  if (!u || !r) return;
  r.tr.dataset.state = u.state;
  r.kind.textContent = u.kind + (u.adopted ? ', adopted' : '') + (u.tty ? (u.tty.attached ? ', terminal attached' : ', tty') : '');
  r.kind.title = u.tty ? (u.tty.attached ? 'bksup attach is connected to its terminal' : `runs on a terminal: bksup attach ${name}`) : '';
  r.pill.dataset.state = u.state;
  r.pill.textContent = u.state;
  r.pid.textContent = u.pid === null ? '-' : String(u.pid);
  r.uptime.textContent = UP_STATES.has(u.state) ? formatDuration(Date.now() - u.since) : '-';
  r.restarts.textContent = String(u.restarts ?? 0);
  r.exit.textContent = u.exitCode !== null && u.exitCode !== undefined ? String(u.exitCode) : u.signal ? u.signal : '-';
  healthCell(r.health, u);
  r.why.replaceChildren();
  if (u.reason) r.why.append(el('span', { class: ['failed', 'backoff', 'unhealthy'].includes(u.state) ? 'bad' : '', text: truncate(u.reason, 600) }));
  const b = (a) => r.actions.querySelector(`[data-action="${a}"]`);
  b('start').disabled = UP_STATES.has(u.state) || u.state === 'disabled';
  b('stop').disabled = ['stopped', 'disabled', 'stopping'].includes(u.state);
  b('restart').disabled = u.state === 'disabled';
}

function updateUnit(name) {
  updateNode(name);
  updateRow(name);
  updateEdges();
  renderSummary();
}

function buildAll() {
  buildGraph();
  buildTable();
  for (const n of order) updateRow(n);
  renderSummary();
}

function renderSummary() {
  const counts = new Map();
  for (const u of units.values()) counts.set(u.state, (counts.get(u.state) ?? 0) + 1);
  const s = $('summary');
  s.replaceChildren(...STATES.filter((st) => counts.has(st)).map((st) => el('span', { class: 'count', title: st }, el('span', { class: 'dot', 'data-state': st }), `${counts.get(st)} ${st}`)));
}

// Uptimes tick; health and restarts change without state events.
setInterval(() => {
  if (sessionEnded) return;
  for (const n of order) {
    const u = units.get(n);
    const r = rowEls.get(n);
    if (u && r) r.uptime.textContent = UP_STATES.has(u.state) ? formatDuration(Date.now() - u.since) : '-';
    if (u && UP_STATES.has(u.state)) updateNode(n);
  }
}, 1000);
setInterval(() => {
  if (!sessionEnded && document.visibilityState === 'visible') void refreshUnits();
}, 2000);

// ------------------------------------------------------------------ actions

function confirmStop(name) {
  const d = $('confirm');
  $('confirm-text').textContent = `Stop ${name}? It stays stopped until you start it again; units that need it will wait.`;
  $('confirm-ok').textContent = `Stop ${name}`;
  return new Promise((resolve) => {
    d.addEventListener('close', () => resolve(d.returnValue === 'ok'), { once: true });
    d.returnValue = '';
    d.showModal();
  });
}

async function act(name, action) {
  if (action === 'stop' && !(await confirmStop(name))) return;
  const r = rowEls.get(name);
  const button = r?.actions.querySelector(`[data-action="${action}"]`);
  if (button) button.disabled = true;
  try {
    await api('POST', `/api/units/${encodeURIComponent(name)}/${action}`);
    toast(`${action} ${name}: requested`);
  } catch (err) {
    toast(`${action} ${name}: ${err instanceof Error ? err.message : String(err)}`, true);
  } finally {
    updateRow(name);
    scheduleRefresh(0);
  }
}

// ------------------------------------------------------------------ verify

/** A refused config reload stays on screen until a reload succeeds: the stack runs the old config. */
function renderReload(r) {
  const b = $('reload-banner');
  if (!r || r.ok) {
    b.hidden = true;
    return;
  }
  b.replaceChildren(
    el('div', { text: `reload (${r.trigger}): the config is not valid, nothing was changed (the stack runs the previous config):` }),
    el('pre', { text: (r.errors ?? []).join('\n') }),
  );
  b.hidden = false;
}

function renderVerify(v) {
  const box = $('verify');
  box.replaceChildren(
    el('div', { class: 'when', text: `${v.ok ? 'all checks passed' : 'some checks failed'} at ${new Date(v.ts).toLocaleTimeString()}` }),
    el('ul', {}, ...v.results.map((r) => el('li', { 'data-check': r.name }, el('span', { class: r.ok ? 'ok' : 'bad', text: r.ok ? '✓ ' : '✗ ' }), `${r.name}`, el('span', { class: 'muted', text: ` — ${r.detail}` })))),
  );
  const s = $('verify-summary');
  const passed = v.results.filter((r) => r.ok).length;
  s.textContent = `verify ${v.ok ? '✓' : '✗'} ${passed}/${v.results.length}`;
  s.className = `verify-summary ${v.ok ? 'ok' : 'bad'}`;
  s.hidden = false;
}

// ------------------------------------------------------------------ logs

const ROW_PX = 18;
const MAX_LINES = 200_000;
const OVERSCAN = 12;

/** The lines held in the page and the rows in sight. */
class LogView {
  /** @type {object[]} every entry, oldest first: lines {id, unit, stream, seq, ts, line} and gaps {id, gap:true, …} */
  entries = [];
  /** @type {object[] | null} entries passing the filter; null = all of them */
  shown = null;
  #nextId = 1;
  #gaps = 0;
  #match = null;
  #stderrOnly = false;
  #follow = true;
  #unseen = 0;
  #frame = 0;
  #pool = [];
  #version = 0;

  constructor() {
    this.view = $('log-view');
    this.spacer = $('log-spacer');
    this.rows = $('log-rows');
    this.view.addEventListener('scroll', () => this.#onScroll());
    this.view.addEventListener('click', (ev) => this.#onClick(ev));
    window.addEventListener('resize', () => this.schedule());
  }

  get follow() {
    return this.#follow;
  }

  clear() {
    this.entries = [];
    this.shown = this.#match || this.#stderrOnly ? [] : null;
    this.#gaps = 0;
    this.#unseen = 0;
    this.#version++;
    $('log-detail').hidden = true;
    this.schedule();
  }

  add(items) {
    if (items.length === 0) return;
    for (const it of items) {
      it.id = this.#nextId++;
      if (it.gap) this.#gaps++;
      this.entries.push(it);
      const pass = this.shown ? this.#passes(it) : true;
      if (this.shown && pass) this.shown.push(it);
      if (pass && !this.#follow) this.#unseen++;
    }
    if (this.entries.length > MAX_LINES) this.#trim();
    this.schedule();
  }

  setFilter(text, stderrOnly) {
    this.#stderrOnly = stderrOnly;
    this.#match = null;
    const input = $('log-filter');
    input.classList.remove('invalid');
    if (text) {
      const re = /^\/(.+)\/([a-z]*)$/.exec(text);
      if (re) {
        try {
          const rx = new RegExp(re[1], re[2].replace(/g/g, ''));
          this.#match = { test: (s) => rx.test(s), regex: rx };
        } catch {
          input.classList.add('invalid');
        }
      } else {
        const q = text.toLowerCase();
        this.#match = { test: (s) => s.toLowerCase().includes(q), text: q };
      }
    }
    this.shown = this.#match || this.#stderrOnly ? this.entries.filter((e) => this.#passes(e)) : null;
    this.#version++;
    this.schedule();
  }

  setFollow(on) {
    this.#follow = on;
    $('log-follow').checked = on;
    $('log-resume').hidden = on;
    if (on) this.#unseen = 0;
    this.schedule();
  }

  #passes(e) {
    if (e.gap) return true;
    if (this.#stderrOnly && e.stream !== 'stderr') return false;
    return this.#match ? this.#match.test(e.line) : true;
  }

  /** Drops the oldest tenth, keeping the rows in sight where they are when not following. */
  #trim() {
    const drop = this.entries.length - Math.floor(MAX_LINES * 0.9);
    const removed = this.entries.splice(0, drop);
    const firstId = this.entries[0]?.id ?? Infinity;
    this.#gaps -= removed.filter((e) => e.gap).length;
    let shift = drop;
    if (this.shown) {
      let k = 0;
      while (k < this.shown.length && this.shown[k].id < firstId) k++;
      this.shown.splice(0, k);
      shift = k;
    }
    if (!this.#follow) this.view.scrollTop = Math.max(0, this.view.scrollTop - shift * ROW_PX);
    this.#version++;
  }

  schedule() {
    if (this.#frame) return;
    this.#frame = requestAnimationFrame(() => {
      this.#frame = 0;
      this.render();
    });
  }

  render() {
    const list = this.shown ?? this.entries;
    const n = list.length;
    this.spacer.style.height = `${n * ROW_PX}px`;
    if (this.#follow) this.view.scrollTop = this.view.scrollHeight;
    const top = this.view.scrollTop;
    const height = this.view.clientHeight || 440;
    const first = Math.max(0, Math.floor(top / ROW_PX) - OVERSCAN);
    const last = Math.min(n, Math.ceil((top + height) / ROW_PX) + OVERSCAN);
    const count = Math.max(0, last - first);
    while (this.#pool.length < count) {
      const row = el('div', { class: 'row' });
      row.append(el('span', { class: 'ts' }), el('span', { class: 'unit' }), el('span', { class: 'tag', text: 'ERR' }), el('span', { class: 'txt' }));
      this.#pool.push(row);
    }
    if (this.rows.childElementCount !== count) this.rows.replaceChildren(...this.#pool.slice(0, count));
    this.rows.style.transform = `translateY(${first * ROW_PX}px)`;
    for (let i = 0; i < count; i++) this.#fill(this.#pool[i], list[first + i]);
    this.#stats(n);
  }

  #fill(row, e) {
    const key = `${e.id}:${this.#version}`;
    if (row.dataset.key === key) return;
    row.dataset.key = key;
    row.dataset.unit = e.unit;
    const [ts, unit, , txt] = row.children;
    ts.textContent = formatTime(e.ts);
    unit.textContent = e.unit;
    unit.style.color = `hsl(${unitHue(e.unit)} 70% 68%)`;
    if (e.gap) {
      row.className = 'row gap';
      row.dataset.seq = `${e.fromSeq}-${e.toSeq}`;
      txt.textContent = `⚠ gap: ${e.dropped.toLocaleString()} line${e.dropped === 1 ? '' : 's'} of ${e.unit} not shown (seq ${e.fromSeq}–${e.toSeq}): this page fell behind or they are no longer kept`;
      row.title = 'The supervisor dropped these lines for this browser (it could not keep up), or they are no longer in memory nor in the log files. They are still in logs/<unit>.log if it was not rotated away.';
      return;
    }
    row.className = `row ${e.stream}`;
    row.dataset.seq = String(e.seq);
    row.title = '';
    this.#highlight(txt, e.line);
  }

  #highlight(node, text) {
    const m = this.#match;
    let at = -1;
    let len = 0;
    if (m?.text) {
      at = text.toLowerCase().indexOf(m.text);
      len = m.text.length;
    } else if (m?.regex) {
      const r = m.regex.exec(text);
      if (r && r[0].length > 0) {
        at = r.index;
        len = r[0].length;
      }
    }
    if (at < 0) {
      node.textContent = text;
      return;
    }
    node.replaceChildren(text.slice(0, at), el('mark', { text: text.slice(at, at + len) }), text.slice(at + len));
  }

  #stats(n) {
    const s = $('log-stats');
    s.dataset.lines = String(this.entries.length - this.#gaps);
    s.dataset.gaps = String(this.#gaps);
    s.dataset.shown = String(n);
    const parts = [`${(this.entries.length - this.#gaps).toLocaleString()} lines`];
    if (this.shown) parts.push(`${n.toLocaleString()} shown`);
    s.textContent = parts.join(' · ');
    const jump = $('log-next-gap');
    jump.hidden = this.#gaps === 0;
    jump.textContent = `⚠ ${this.#gaps} gap${this.#gaps === 1 ? '' : 's'}: show next`;
    const resume = $('log-resume');
    if (!this.#follow) {
      resume.hidden = false;
      resume.textContent = this.#unseen > 0 ? `↓ ${this.#unseen.toLocaleString()} new · follow` : '↓ follow';
    }
  }

  /** Scrolls to the first gap below the top of the view (wrapping around). */
  nextGap() {
    const list = this.shown ?? this.entries;
    const top = Math.floor(this.view.scrollTop / ROW_PX) + 3;
    let i = list.findIndex((e, k) => k > top && e.gap);
    if (i < 0) i = list.findIndex((e) => e.gap);
    if (i < 0) return;
    this.setFollow(false);
    this.view.scrollTop = Math.max(0, (i - 2) * ROW_PX);
    this.schedule();
  }

  #onScroll() {
    const v = this.view;
    const atBottom = v.scrollHeight - v.scrollTop - v.clientHeight < ROW_PX * 1.5;
    if (atBottom !== this.#follow) this.setFollow(atBottom);
    this.schedule();
  }

  #onClick(ev) {
    const row = ev.target instanceof Element ? ev.target.closest('.row') : null;
    if (!row) return;
    const id = Number(row.dataset.key?.split(':')[0]);
    const e = this.entries.find((x) => x.id === id);
    if (!e) return;
    const d = $('log-detail');
    d.hidden = false;
    d.textContent = e.gap ? row.lastChild.textContent : `${new Date(e.ts).toISOString()} ${e.unit} ${e.stream} #${e.seq}\n${e.line}`;
  }
}

/** The /api/logs connection for the chosen units; resumes by seq when it drops. */
class LogsStream {
  #ws;
  #gen = 0;
  #timer;
  #retry = 500;
  #selected = new Set();
  #known = [];
  #tail = 1000;
  #instance;
  #cursor = new Map();
  #stopped = false;
  /** Whether a unit choice exists (saved, or made from the first snapshot). */
  #initialised = false;

  constructor(view) {
    this.view = view;
    try {
      const saved = JSON.parse(localStorage.getItem('bksup.logs') ?? 'null');
      if (saved && Array.isArray(saved.units)) this.#selected = new Set(saved.units);
      if (saved && [1000, 10000, 100000].includes(saved.tail)) this.#tail = saved.tail;
      this.#initialised = saved !== null;
    } catch {
      // no saved choice
    }
    $('log-tail').value = String(this.#tail);
  }

  /** Called with every snapshot: the first one picks every unit, unless the user chose before. */
  unitsKnown(names) {
    const fresh = names.join('\n') !== this.#known.join('\n');
    this.#known = names;
    if (!this.#initialised) {
      this.#selected = new Set(names);
      this.#initialised = true;
    } else {
      for (const n of [...this.#selected]) if (!names.includes(n)) this.#selected.delete(n);
    }
    if (fresh) this.#renderChips();
    if (!this.#ws && !this.#timer) this.#open();
  }

  only(name) {
    this.#selected = new Set([name]);
    this.#changed();
    $('logs-panel').scrollIntoView({ behavior: 'smooth', block: 'start' });
  }

  setTail(n) {
    this.#tail = n;
    this.#changed();
  }

  toggle(name, on) {
    if (on) this.#selected.add(name);
    else this.#selected.delete(name);
    this.#changed();
  }

  setAll(on) {
    this.#selected = on ? new Set(this.#known) : new Set();
    this.#changed();
  }

  stop() {
    this.#stopped = true;
    this.#close();
  }

  #changed() {
    try {
      localStorage.setItem('bksup.logs', JSON.stringify({ units: [...this.#selected], tail: this.#tail }));
    } catch {
      // private mode: not remembered
    }
    this.#renderChips();
    this.#close();
    this.view.clear();
    this.#cursor.clear();
    this.#instance = undefined;
    this.#open();
  }

  #renderChips() {
    const box = $('log-units');
    const chips = this.#known.map((name) => {
      const on = this.#selected.has(name);
      const input = el('input', { type: 'checkbox', 'data-unit': name });
      input.checked = on;
      input.addEventListener('change', () => this.toggle(name, input.checked));
      const label = el('label', { class: on ? 'chip on' : 'chip', 'data-unit': name }, input, name);
      return label;
    });
    const all = el('button', { type: 'button', class: 'chip chip-all', text: 'all', onclick: () => this.setAll(true) });
    const none = el('button', { type: 'button', class: 'chip chip-all', text: 'none', onclick: () => this.setAll(false) });
    box.replaceChildren(...chips, all, none);
  }

  #close() {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#gen++;
    const ws = this.#ws;
    this.#ws = undefined;
    if (ws) ws.close(1000);
  }

  #open() {
    if (this.#stopped || sessionEnded) return;
    const units = this.#known.filter((n) => this.#selected.has(n));
    if (units.length === 0) {
      this.view.render();
      return;
    }
    const gen = ++this.#gen;
    const params = new URLSearchParams({ units: units.join(','), follow: '1' });
    if (this.#cursor.size > 0) {
      params.set('since', [...this.#cursor].map(([u, s]) => `${u}:${s}`).join(','));
      if (this.#instance) params.set('instance', this.#instance);
    } else {
      params.set('tail', String(this.#tail));
    }
    const ws = new WebSocket(wsUrl(`/api/logs?${params}`));
    this.#ws = ws;
    let pending = [];
    let flushQueued = false;
    // Frames arrive in bursts (history comes 1000 lines a frame): one add() per task.
    const flush = () => {
      flushQueued = false;
      const items = pending;
      pending = [];
      if (gen === this.#gen) this.view.add(items);
    };
    const queue = (item) => {
      pending.push(item);
      if (!flushQueued) {
        flushQueued = true;
        setTimeout(flush, 0);
      }
    };
    const seen = (unit, seq) => {
      if (seq > (this.#cursor.get(unit) ?? 0)) this.#cursor.set(unit, seq);
    };
    ws.onmessage = (m) => {
      if (gen !== this.#gen) return;
      let f;
      try {
        f = JSON.parse(m.data);
      } catch {
        return;
      }
      switch (f.type) {
        case 'hello':
          this.#retry = 500;
          this.#instance = f.instance;
          for (const [u, s] of Object.entries(f.from)) seen(u, s);
          return;
        case 'log':
          seen(f.unit, f.seq);
          queue({ unit: f.unit, stream: f.stream, seq: f.seq, ts: f.ts, line: f.line });
          return;
        case 'logs':
          for (const l of f.lines) {
            seen(l.unit, l.seq);
            queue({ unit: l.unit, stream: l.stream, seq: l.seq, ts: l.ts, line: l.line });
          }
          return;
        case 'gap':
          seen(f.unit, f.toSeq);
          queue({ gap: true, unit: f.unit, dropped: f.dropped, fromSeq: f.fromSeq, toSeq: f.toSeq, ts: Date.now() });
          return;
        case 'error':
          toast(`logs: ${f.error}`, true);
          return;
        default:
      }
    };
    ws.onclose = (ev) => {
      if (gen !== this.#gen) return;
      this.#ws = undefined;
      if (ev.code === 1008) return; // a request the server refuses: retrying would not help
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.#open();
      }, this.#retry);
      this.#retry = Math.min(this.#retry * 2, 5000);
    };
  }
}

// ------------------------------------------------------------------ start

const logView = new LogView();
const logs = new LogsStream(logView);
const events = new EventsStream();

$('log-follow').addEventListener('change', (ev) => logView.setFollow(ev.target.checked));
$('log-resume').addEventListener('click', () => logView.setFollow(true));
$('log-next-gap').addEventListener('click', () => logView.nextGap());
let filterTimer;
const applyFilter = () => logView.setFilter($('log-filter').value.trim(), $('log-stderr').checked);
$('log-filter').addEventListener('input', () => {
  clearTimeout(filterTimer);
  filterTimer = setTimeout(applyFilter, 150);
});
$('log-stderr').addEventListener('change', applyFilter);
$('log-tail').addEventListener('change', (ev) => logs.setTail(Number(ev.target.value)));
$('logout').addEventListener('click', async () => {
  await fetch('/logout', { method: 'POST', credentials: 'same-origin' }).catch(() => undefined);
  location.replace('/login');
});
renderLegend();
// The graph needs the unit list first; the events snapshot brings it.
events.start();
