// SIS Bridge wallboard: a tile per service group, fed by statistics-only
// subscriptions (QueueStatistics, docs/protocol.md section 9); a click on a
// tile subscribes to the group's sessions too and lists them. Plain
// modules, no build step, no external resources; every piece of data
// reaches the page through textContent or setAttribute, never as HTML.
'use strict';

import { SisClient, Closed } from './sis-client.js';
import { Board } from './board.js';
import { Detail } from './detail.js';
import { parse, query, DEFAULTS } from './settings.js';
import { clock } from './format.js';

const DIRECTORY_REFRESH_MS = 60000; // new or removed groups are picked up this often
const PER_SECOND = 10; // MaxEventsPerSecond: a group's session list changes at most this often
const NEW_GROUP_SYNC_MS = 300; // a group the gateway subscribed by itself gets its tile this soon

const STATE_TEXT = {
  connecting: 'connecting',
  login: 'login required',
  live: 'live',
  router: 'router disconnected',
  reconnecting: 'reconnecting',
  nolicense: 'no license seat free',
  error: 'error',
};

const $ = (id) => document.getElementById(id);
const ui = {
  status: $('status'),
  statusText: $('status-text'),
  statusDetail: $('status-detail'),
  totalGroups: $('total-groups'),
  totalWaiting: $('total-waiting'),
  totalAnswered: $('total-answered'),
  totalAbandoned: $('total-abandoned'),
  routerTime: $('router-time'),
  notice: $('notice'),
  down: $('down'),
  downReason: $('down-reason'),
  downSince: $('down-since'),
  board: $('board'),
  empty: $('empty'),
  login: $('login'),
  loginError: $('login-error'),
  loginUser: $('login-user'),
  loginPass: $('login-pass'),
  settingsOpen: $('settings-open'),
  settings: $('settings'),
};

// ---- settings -------------------------------------------------------

const parsed = parse(location.search);
let settings = parsed.settings;
let missing = []; // chosen groups or tenants not in the directory

function showNotice() {
  const parts = [];
  if (parsed.problems.length) parts.push('Settings not understood (defaults used): ' + parsed.problems.join('; '));
  if (missing.length) parts.push('Not in the directory: ' + missing.join(', '));
  ui.notice.textContent = parts.join(' — ');
  ui.notice.hidden = parts.length === 0;
}

function applyTheme() {
  document.documentElement.dataset.theme = settings.theme;
}

// ---- model ----------------------------------------------------------

// ServiceGroupID -> {id, name, tenantID, tenantName, stats (the latest
// QueueStatistics), unavailable, tile, chain (the group's requests, one
// after another)}
const groups = new Map();
let opened = null; // the group whose sessions are listed

const board = new Board(ui.board, { box: $('pager'), text: $('pager-text'), bar: $('pager-bar') }, (g) => openDetail(g), () => routerNow(Date.now()));
const detail = new Detail($('detail'), () => closeDetail());
const dirty = new Set();
let frame = 0;

function markDirty(what) {
  dirty.add(what);
  if (!frame) frame = requestAnimationFrame(flush);
}

function flush() {
  frame = 0;
  for (const d of dirty) {
    if (d === detail) detail.render(routerNow(Date.now()));
    else board.render(d);
  }
  dirty.clear();
  updateTotals();
}

function updateTotals() {
  const t = board.totals();
  ui.totalGroups.textContent = String(t.groups);
  ui.totalWaiting.textContent = String(t.waiting);
  ui.totalAnswered.textContent = String(t.answered);
  ui.totalAbandoned.textContent = String(t.abandoned);
  ui.empty.hidden = t.groups > 0;
}

// ---- the session ----------------------------------------------------

// The page's WebSocket; tests may have it lose events (window.wallboard.lose).
let lose = null;
class PageSocket extends WebSocket {
  set onmessage(fn) {
    super.onmessage = (ev) => {
      if (lose && typeof ev.data === 'string' && lose(JSON.parse(ev.data))) return;
      fn(ev);
    };
  }
}

const scheme = location.protocol === 'https:' ? 'wss://' : 'ws://';
const client = new SisClient({
  url: scheme + location.host + '/sis/v1',
  positions: true,
  maxEventsPerSecond: PER_SECOND,
  WebSocket: PageSocket,
  minBackoff: 1000,
  maxBackoff: 15000,
  login: askLogin,
  onState: setState,
  onEvent: onEvent,
  onReset: (id) => opened && opened.id === id && detail.reset(),
  onError: (id, err) => unavailable(id, err),
});
// The router's clock (RouterTime and RouterClockRate of the gateway's
// replies): the simulator's, or a capture played faster, is not this
// machine's, and waits are measured by it.
const routerNow = (now) => client.routerNow(now);

let downSince = 0;
let inSession = false; // a session is initialized (its subscriptions may be under way)

function setState(state, reason) {
  const last = client.lastClose;
  const parts = reason ? [reason] : [];
  if (last && state !== 'router') parts.push('last close: ' + last.code + (last.reason ? ' ' + last.reason : '') + ' at ' + last.at.toLocaleTimeString());
  ui.status.dataset.state = state;
  ui.statusText.textContent = STATE_TEXT[state] || state;
  ui.statusDetail.textContent = parts.join(' · ');
  document.body.dataset.state = state;
  const down = state === 'router';
  if (down && !downSince) downSince = Date.now();
  if (!down) downSince = 0;
  ui.down.hidden = !down;
  ui.board.hidden = down;
  if (down) {
    ui.downReason.textContent = reason || 'asking the gateway why…';
    ui.downSince.textContent = 'Queues unknown since ' + clock(downSince) + '; trying again every 2 s.';
  }
  if (state === 'live') {
    ui.login.hidden = true;
    inSession = true;
    syncDirectory().catch((err) => !(err instanceof Closed) && setState('error', err.message));
  } else if (inSession && (state === 'router' || state === 'reconnecting')) {
    onLost();
  }
}

// onLost: the socket closed or the router disconnected; every figure is
// unknown until the next session's subscriptions bring them again (the
// client takes them up by itself, the listed group resumed from its Seq).
function onLost() {
  inSession = false;
  for (const g of groups.values()) {
    g.stats = null;
    g.unavailable = '';
    markDirty(g);
  }
  if (opened) detail.setState('the queue is unknown until the gateway is back…');
}

setInterval(() => inSession && syncDirectory().catch(() => {}), DIRECTORY_REFRESH_MS);

// select picks the groups the settings choose from the directory, in the
// order to show them: as listed in groups=, else by tenant and name.
function select(dir) {
  const want = (list) => new Set(list.map((s) => s.toLowerCase()));
  const tenants = want(settings.tenants);
  const named = settings.groups.map((s) => s.toLowerCase());
  const found = [];
  const seenT = new Set();
  const seenG = new Set();
  for (const t of (dir && dir.Tenants) || []) {
    const tname = t.Name || t.TenantID;
    const tKeys = [t.TenantID.toLowerCase(), tname.toLowerCase()];
    if (tenants.size && !tKeys.some((k) => tenants.has(k))) continue;
    tKeys.forEach((k) => seenT.add(k));
    for (const sg of t.ServiceGroups || []) {
      const name = sg.ServiceGroupName || sg.ServiceGroupID;
      const keys = [sg.ServiceGroupID.toLowerCase(), name.toLowerCase()];
      const rank = named.length ? Math.min(...keys.map((k) => named.indexOf(k)).filter((i) => i >= 0)) : 0;
      if (!Number.isFinite(rank)) continue;
      keys.forEach((k) => seenG.add(k));
      found.push({ id: sg.ServiceGroupID, name, tenantID: t.TenantID, tenantName: tname, rank });
    }
  }
  missing = settings.tenants.filter((s) => !seenT.has(s.toLowerCase())).concat(named.length ? settings.groups.filter((s) => !seenG.has(s.toLowerCase())) : []);
  const byName = (a, b) => a.localeCompare(b, undefined, { sensitivity: 'base' });
  return found.sort((a, b) => a.rank - b.rank || byName(a.tenantName, b.tenantName) || byName(a.name, b.name));
}

// syncDirectory brings the tiles and subscriptions in line with the
// directory and the settings: it subscribes to every chosen group (or
// tenant) the client does not follow yet, and drops the tiles of groups
// gone. With no groups= setting the page follows whole tenants (Subscribe
// with AllGroups, protocol section 10): the gateway subscribes it to the
// groups added later by itself, and ends removed ones with
// ServiceGroupRemoved.
const tenantWide = () => settings.groups.length === 0;
const early = new Map(); // figures of groups subscribed before their tile exists
let syncSoon = 0;

async function syncDirectory() {
  const dir = await client.directory();
  const chosen = select(dir);
  showNotice();
  const tenants = tenantWide() ? chosenTenants(dir) : [];
  const keep = new Set(chosen.map((c) => c.id));
  for (const [id, g] of groups) {
    if (keep.has(id)) continue;
    groups.delete(id);
    if (opened === g) closeDetail(true);
    if (client.wanted.has(id)) queue(g, () => client.unsubscribe(id)).catch(() => {});
  }
  const subscribing = [];
  const shown = chosen.map((c) => {
    let g = groups.get(c.id);
    if (!g) {
      g = { id: c.id, stats: early.get(c.id) || null, unavailable: '', tile: null, chain: Promise.resolve() };
      early.delete(c.id);
      groups.set(c.id, g);
    }
    Object.assign(g, { name: c.name, tenantID: c.tenantID, tenantName: c.tenantName });
    if (!tenants.includes(c.tenantID)) subscribing.push(subscribe(g));
    return g;
  });
  for (const t of tenants) if (!client.tenants.has(t) && !tenantPending.has(t)) subscribing.push(subscribeTenant(t));
  board.show(shown);
  updateTotals();
  await Promise.all(subscribing);
  // a list opened while the gateway was away: its sessions too
  if (opened && !(client.wanted.get(opened.id) || {}).Sessions) resubscribe(opened);
}

// chosenTenants lists the tenants the settings choose, by TenantID.
function chosenTenants(dir) {
  const want = new Set(settings.tenants.map((s) => s.toLowerCase()));
  return ((dir && dir.Tenants) || [])
    .filter((t) => !want.size || want.has(t.TenantID.toLowerCase()) || want.has((t.Name || '').toLowerCase()))
    .map((t) => t.TenantID);
}

// subscribeTenant follows every group of a tenant, statistics only; a
// group whose sessions are listed is subscribed again with them.
const tenantPending = new Set(); // tenants whose Subscribe is under way
async function subscribeTenant(tenant) {
  tenantPending.add(tenant);
  try {
    await client.subscribe({ TenantID: tenant, AllGroups: true, Statistics: true, Sessions: false });
  } catch (err) {
    for (const g of groups.values()) if (g.tenantID === tenant) unavailable(g.id, err);
    return;
  } finally {
    tenantPending.delete(tenant);
  }
  if (opened && opened.tenantID === tenant) resubscribe(opened);
}

// unavailable shows on its tile why a group cannot be followed.
function unavailable(id, err) {
  const g = groups.get(id);
  if (!g || err instanceof Closed || err.type === 'RouterDisconnectedFault') return; // taken up again with the next session
  g.unavailable = err.message || err.type;
  if (opened === g) detail.failed(g.unavailable);
  markDirty(g);
}

// onGroupRemoved drops a group the directory no longer has.
function onGroupRemoved(id) {
  const g = groups.get(id);
  if (!g) return;
  groups.delete(id);
  if (opened === g) closeDetail(true);
  board.show(board.groups.filter((x) => x !== g));
  updateTotals();
}

// A group the gateway subscribed the page to by itself (added to a
// followed tenant): its tile comes with the next look at the directory.
function unknownGroup(m) {
  if (m.event === 'QueueStatistics') early.set(m.ServiceGroupID, m);
  if (syncSoon) return;
  syncSoon = setTimeout(() => {
    syncSoon = 0;
    if (inSession) syncDirectory().catch(() => {});
  }, NEW_GROUP_SYNC_MS);
}

// queue runs a group's requests one after another (a Subscribe waits for
// the Unsubscribe before it).
function queue(g, fn) {
  const run = g.chain.then(fn, fn);
  g.chain = run.catch(() => {});
  return run;
}

// subscribe follows a group the client does not follow yet: statistics,
// and its sessions while they are listed.
function subscribe(g) {
  return queue(g, async () => {
    if (!inSession || client.wanted.has(g.id)) return;
    const sessions = opened === g;
    if (sessions) detail.reset();
    try {
      await client.subscribe({ ServiceGroupID: g.id, Statistics: true, Sessions: sessions });
      g.unavailable = '';
      markDirty(g);
    } catch (err) {
      unavailable(g.id, err);
    }
  });
}

// resubscribe changes what a group's subscription asks for: Unsubscribe,
// then Subscribe anew (a session subscribes to a group once).
function resubscribe(g) {
  if (!inSession) return; // the next session subscribes as the detail asks
  queue(g, () => client.unsubscribe(g.id)).catch(() => {});
  subscribe(g).catch(() => {});
}

function openDetail(g) {
  if (opened === g) return;
  if (opened) closeDetail();
  opened = g;
  detail.open(g);
  resubscribe(g);
}

function closeDetail(gone) {
  const g = opened;
  if (!g) return;
  opened = null;
  detail.close();
  if (!gone) resubscribe(g);
  g.tile && g.tile.box.focus();
}

// ---- events ---------------------------------------------------------

function onEvent(m) {
  if (m.event === 'ServiceGroupRemoved') return onGroupRemoved(m.ServiceGroupID);
  const g = groups.get(m.ServiceGroupID);
  if (!g) return m.event === 'RouterDisconnected' ? undefined : unknownGroup(m);
  switch (m.event) {
    case 'QueueStatistics':
      g.stats = m;
      markDirty(g);
      if (opened === g) detail.stats(m);
      break;
    case 'SessionsUpdated':
      if (opened === g) {
        detail.apply(m, routerNow(Date.now()));
        markDirty(detail);
      }
      break;
    case 'InitialDataComplete':
      if (opened === g) {
        detail.completed();
        markDirty(detail);
      }
      break;
  }
}

// ---- login ----------------------------------------------------------

let loginWait = null; // {promise, resolve} while the form is up

// askLogin shows the form and resolves with the credentials once it is
// submitted. Callers waiting at the same time share one form.
function askLogin(message) {
  ui.loginError.textContent = message || '';
  ui.loginError.hidden = !message;
  if (!loginWait) {
    let resolve;
    const promise = new Promise((r) => (resolve = r));
    loginWait = { promise, resolve };
    ui.login.hidden = false;
    ui.loginPass.value = '';
    ui.loginUser.focus();
  }
  return loginWait.promise;
}

ui.login.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const creds = { LogonID: ui.loginUser.value, Password: ui.loginPass.value };
  ui.loginPass.value = ''; // the password lives in the session only
  ui.login.hidden = true;
  const w = loginWait;
  loginWait = null;
  if (w) w.resolve(creds);
});

// ---- settings dialog ------------------------------------------------

const form = ui.settings.querySelector('form');
const field = (name) => form.elements.namedItem(name);

function fillForm() {
  field('tenants').value = settings.tenants.join(', ');
  field('groups').value = settings.groups.join(', ');
  field('theme').value = settings.theme;
  field('mask').checked = settings.mask;
  field('rotate').value = String(settings.rotate);
  for (const k of ['wait', 'waiting', 'sl', 'est']) {
    field(k + '-warn').value = String(settings[k][0]);
    field(k + '-alert').value = String(settings[k][1]);
  }
  formProblems([]);
  field('link').value = location.href;
}

function formQuery() {
  const q = new URLSearchParams();
  q.set('tenants', field('tenants').value);
  q.set('groups', field('groups').value);
  q.set('theme', field('theme').value);
  q.set('mask', field('mask').checked ? 'on' : 'off');
  q.set('rotate', field('rotate').value);
  for (const k of ['wait', 'waiting', 'sl', 'est']) q.set(k, field(k + '-warn').value + ',' + field(k + '-alert').value);
  return q.toString();
}

function formProblems(problems) {
  const p = ui.settings.querySelector('.settings-problems');
  p.textContent = problems.join('; ');
  p.hidden = problems.length === 0;
}

ui.settingsOpen.addEventListener('click', () => {
  fillForm();
  ui.settings.showModal();
});

form.addEventListener('submit', (ev) => {
  ev.preventDefault();
  if (ev.submitter && ev.submitter.value === 'cancel') return ui.settings.close();
  const next = ev.submitter && ev.submitter.value === 'defaults' ? { settings: Object.assign({}, DEFAULTS), problems: [] } : parse(formQuery());
  if (next.problems.length) return formProblems(next.problems);
  changeSettings(next.settings);
  field('link').value = location.href;
  ui.settings.close();
});

// changeSettings applies new settings in place and writes them to the URL,
// so the link opens the same view on a wall screen.
function changeSettings(next) {
  const chosen = JSON.stringify([settings.tenants, settings.groups]) !== JSON.stringify([next.tenants, next.groups]);
  settings = next;
  parsed.problems = [];
  history.replaceState(null, '', location.pathname + query(settings));
  applyTheme();
  board.setSettings(settings);
  detail.setSettings(settings);
  if (chosen) {
    client.restart(); // every subscription anew, on a new connection
    for (const g of groups.values()) g.chain = Promise.resolve();
  }
  showNotice();
}

// ---- start ----------------------------------------------------------

applyTheme();
showNotice();
board.setSettings(settings);
detail.setSettings(settings);
function tick() {
  const rnow = routerNow(Date.now());
  board.tick();
  if (opened) detail.tick(rnow);
  ui.routerTime.textContent = clock(rnow);
}
tick();
setInterval(tick, 1000);
document.addEventListener('keydown', (ev) => {
  if (ev.key === 'Escape' && opened && !ui.settings.open) closeDetail();
});
client.connect().catch(() => {});

// for the browser tests and the smoothness benchmark: read-only views
window.wallboard = Object.freeze({
  groups: () => Array.from(groups.values()).map((g) => ({ id: g.id, stats: g.stats, unavailable: g.unavailable })),
  page: () => ({ page: board.page + 1, pages: board.plan.pages, perPage: board.plan.perPage }),
  settings: () => settings,
  repairs: () => client.stats.gaps,
  // a test hook: the page drops the events for which lose returns true, as if the network had lost them
  lose: (fn) => {
    lose = fn;
  },
});
