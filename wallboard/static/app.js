// SIS Bridge wallboard: keeps every service group's queue from the gateway's
// events (protocol sis.v1.json, see PROTOCOL.md) and shows it. Plain script,
// no build step, no external resources. Every piece of data reaches the page
// through textContent or setAttribute, never as HTML.
'use strict';

(function () {
  const SUBPROTOCOL = 'sis.v1.json';
  const WS_PATH = '/sis/v1';
  const GROUPS_PATH = '/v1/groups';
  const MAX_ROWS = 15; // sessions listed per card
  const ROUTER_RETRY_MS = 2000; // Initialize retry while the router is down
  const LICENSE_RETRY_MS = 5000; // Initialize retry while no seat is free
  const BACKOFF_MIN_MS = 1000; // reconnect delay after a close, doubling...
  const BACKOFF_MAX_MS = 15000; // ...up to this
  const DIRECTORY_REFRESH_MS = 60000; // new or removed groups are picked up this often
  const LAST_LEFT_MS = 15000; // how long "last left" stays on a card
  const RENDER_DELAY_MS = 50; // events within this long share one repaint
  const WAIT_WARN_S = 120; // a wait this long turns amber
  const WAIT_ALERT_S = 300; // and this long red

  // SessionMediaType member -> short label and CSS class.
  const MEDIA = {
    Voice: ['Voice', 'voice'],
    Chat: ['Chat', 'chat'],
    Callback: ['Callback', 'callback'],
    WebCallBack: ['Web CB', 'webcallback'],
    Email: ['Email', 'email'],
    Campaign: ['Campaign', 'campaign'],
    SMS: ['SMS', 'sms'],
    OpenMedia: ['Open', 'openmedia'],
  };

  // Close codes of the protocol (section 6) and the browser's own.
  const CLOSE_REASONS = {
    1000: 'closed',
    1001: 'gateway shutting down',
    1006: 'connection lost',
    1009: 'frame too large',
    1011: 'gateway error',
    4008: 'heartbeat timeout',
    4009: 'client too slow',
  };

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
    lastUpdate: $('last-update'),
    banner: $('banner'),
    board: $('board'),
    empty: $('empty'),
    login: $('login'),
    loginError: $('login-error'),
    loginUser: $('login-user'),
    loginPass: $('login-pass'),
  };

  // ---- state ----------------------------------------------------------

  let ws = null; // the current socket
  let epoch = 0; // bumped on every new socket and every RouterDisconnected: older work stops
  let nextId = 1;
  const pending = new Map(); // request id -> {resolve, reject}
  let creds = null; // {LogonID, Password}: in memory only, never stored
  let backoff = BACKOFF_MIN_MS;
  let lastClose = ''; // "4009 client too slow at 10:31:02", shown beside the status
  let lastUpdate = null; // Date of the last queue event
  let loginWait = null; // {promise, resolve} while the login form is up
  let directoryTimer = 0;

  // ServiceGroupID -> group: {id, name, tenantID, tenantName, byId (CallID ->
  // SessionInfo), list (sorted by QueuePosition), complete, lastLeft, fresh
  // (CallIDs to highlight), unavailable, view (DOM refs)}
  const groups = new Map();
  const dirty = new Set();
  let renderTimer = 0;

  class Fault extends Error {
    constructor(type, message) {
      super(message || type);
      this.type = type;
    }
  }
  class Closed extends Error {}

  // ---- helpers --------------------------------------------------------

  function h(tag, className, text) {
    const e = document.createElement(tag);
    if (className) e.className = className;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function sleep(ms) {
    return new Promise((r) => setTimeout(r, ms));
  }

  function pad(n) {
    return n < 10 ? '0' + n : String(n);
  }

  // seconds -> "mm:ss", or "h:mm:ss" past an hour.
  function duration(s) {
    s = Math.max(0, Math.floor(s));
    const hh = Math.floor(s / 3600);
    const mm = Math.floor((s % 3600) / 60);
    const ss = s % 60;
    return hh > 0 ? hh + ':' + pad(mm) + ':' + pad(ss) : pad(mm) + ':' + pad(ss);
  }

  function clock(d) {
    return pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds());
  }

  function waitLevel(s) {
    return s >= WAIT_ALERT_S ? 'alert' : s >= WAIT_WARN_S ? 'warn' : '';
  }

  function basic(user, pass) {
    const bytes = new TextEncoder().encode(user + ':' + pass);
    let bin = '';
    for (const b of bytes) bin += String.fromCharCode(b);
    return 'Basic ' + btoa(bin);
  }

  // ---- status ---------------------------------------------------------

  function setState(state, detail) {
    ui.status.dataset.state = state;
    ui.statusText.textContent = STATE_TEXT[state] || state;
    const parts = [];
    if (detail) parts.push(detail);
    if (lastClose) parts.push('last close: ' + lastClose);
    ui.statusDetail.textContent = parts.join(' · ');
    ui.banner.hidden = state !== 'router';
    document.body.dataset.state = state;
  }

  function updateTotals() {
    let waiting = 0;
    for (const g of groups.values()) waiting += g.list.length;
    ui.totalGroups.textContent = String(groups.size);
    ui.totalWaiting.textContent = String(waiting);
    ui.lastUpdate.textContent = lastUpdate ? clock(lastUpdate) : '—';
    ui.empty.hidden = groups.size > 0;
  }

  // ---- login ----------------------------------------------------------

  // askLogin shows the form and resolves once it is submitted (creds set).
  // Callers waiting at the same time share one form.
  function askLogin(message) {
    ui.loginError.textContent = message || '';
    ui.loginError.hidden = !message;
    if (!loginWait) {
      let resolve;
      const promise = new Promise((r) => (resolve = r));
      loginWait = { promise, resolve };
      ui.login.hidden = false;
      ui.loginUser.value = creds ? creds.LogonID : ui.loginUser.value;
      ui.loginPass.value = '';
      ui.loginUser.focus();
    }
    return loginWait.promise;
  }

  ui.login.addEventListener('submit', (ev) => {
    ev.preventDefault();
    creds = { LogonID: ui.loginUser.value, Password: ui.loginPass.value };
    ui.loginPass.value = ''; // the password lives in creds only
    ui.login.hidden = true;
    const w = loginWait;
    loginWait = null;
    if (w) w.resolve();
  });

  // ---- requests -------------------------------------------------------

  function request(op, params) {
    const sock = ws;
    return new Promise((resolve, reject) => {
      if (!sock || sock.readyState !== WebSocket.OPEN) {
        reject(new Closed('not connected'));
        return;
      }
      const id = nextId++;
      pending.set(id, { resolve, reject });
      sock.send(JSON.stringify(Object.assign({ op: op, id: id }, params || {})));
    });
  }

  function onReply(m) {
    const p = pending.get(m.id);
    if (!p) return;
    pending.delete(m.id);
    if (m.fault) p.reject(new Fault(m.fault.type, m.fault.message));
    else p.resolve(m.result || {});
  }

  async function fetchDirectory() {
    for (;;) {
      const headers = { Accept: 'application/json' };
      if (creds) headers.Authorization = basic(creds.LogonID, creds.Password);
      // credentials "omit": no browser login dialog on 401, the page asks itself
      const res = await fetch(GROUPS_PATH, { headers: headers, cache: 'no-store', credentials: 'omit' });
      if (res.status === 401) {
        setState('login');
        await askLogin(creds ? 'These credentials may not list the service groups.' : 'Listing the service groups needs a login.');
        continue;
      }
      if (!res.ok) throw new Error('GET ' + GROUPS_PATH + ': HTTP ' + res.status);
      return res.json();
    }
  }

  // ---- connection -----------------------------------------------------

  function connect() {
    const scheme = location.protocol === 'https:' ? 'wss://' : 'ws://';
    let sock;
    try {
      sock = new WebSocket(scheme + location.host + WS_PATH, SUBPROTOCOL);
    } catch (err) {
      scheduleReconnect(String(err && err.message ? err.message : err));
      return;
    }
    ws = sock;
    const mine = ++epoch;
    setState(lastClose ? 'reconnecting' : 'connecting');
    sock.onopen = () => {
      if (sock === ws) startSession(mine);
    };
    sock.onmessage = (ev) => {
      if (sock !== ws || typeof ev.data !== 'string') return;
      let m;
      try {
        m = JSON.parse(ev.data);
      } catch (_) {
        return;
      }
      if (!m || typeof m !== 'object') return;
      if (m.event) onEvent(m);
      else if (typeof m.id === 'number') onReply(m);
    };
    sock.onclose = (ev) => {
      if (sock !== ws) return;
      ws = null;
      epoch++;
      for (const p of pending.values()) p.reject(new Closed('connection closed'));
      pending.clear();
      const reason = ev.reason || CLOSE_REASONS[ev.code] || ''; // the gateway's words first
      lastClose = ev.code + (reason ? ' ' + reason : '') + ' at ' + clock(new Date());
      clearQueues();
      scheduleReconnect();
    };
  }

  function scheduleReconnect(why) {
    const delay = backoff;
    backoff = Math.min(backoff * 2, BACKOFF_MAX_MS);
    setState('reconnecting', (why ? why + '; ' : '') + 'retry in ' + Math.round(delay / 1000) + ' s');
    setTimeout(connect, delay);
  }

  // startSession initializes the session (retrying as the faults say), lists
  // the groups and subscribes to every one. It gives up as soon as the socket
  // it belongs to is gone or the router disconnects again.
  async function startSession(mine) {
    const stale = () => mine !== epoch;
    for (;;) {
      if (stale()) return;
      try {
        setClock(await request('Initialize', {
          LogonID: creds ? creds.LogonID : '',
          Password: creds ? creds.Password : '',
          SendQueuePositionUpdates: true,
        }));
        break;
      } catch (err) {
        if (stale() || err instanceof Closed) return;
        switch (err.type) {
          case 'InvalidUserFault':
            setState('login');
            await askLogin(creds ? 'Wrong LogonID or password.' : '');
            break;
          case 'RouterDisconnectedFault':
            setState('router');
            await sleep(ROUTER_RETRY_MS);
            break;
          case 'NoLicenseFault':
            setState('nolicense', 'retrying');
            await sleep(LICENSE_RETRY_MS);
            break;
          default:
            setState('error', err.message);
            await sleep(ROUTER_RETRY_MS);
        }
      }
    }
    ui.login.hidden = true;
    for (;;) {
      if (stale()) return;
      try {
        await syncDirectory(mine, true);
        break;
      } catch (err) {
        if (stale() || err instanceof Closed) return;
        setState('error', String(err && err.message ? err.message : err));
        await sleep(ROUTER_RETRY_MS);
      }
    }
    if (stale()) return;
    backoff = BACKOFF_MIN_MS;
    setState('live');
    clearInterval(directoryTimer);
    directoryTimer = setInterval(() => {
      if (stale()) {
        clearInterval(directoryTimer);
        return;
      }
      syncDirectory(mine, false).catch(() => {});
    }, DIRECTORY_REFRESH_MS);
  }

  // syncDirectory fetches the group list and brings the cards and the
  // subscriptions in line with it. fresh: a new session, subscribe to every
  // group; otherwise only to groups that appeared.
  async function syncDirectory(mine, fresh) {
    const dir = await fetchDirectory();
    if (mine !== epoch) return;
    const seen = new Set();
    const subscribe = [];
    for (const t of (dir && dir.Tenants) || []) {
      for (const sg of t.ServiceGroups || []) {
        const id = sg.ServiceGroupID;
        seen.add(id);
        let g = groups.get(id);
        if (!g) {
          g = newGroup(id);
          groups.set(id, g);
          subscribe.push(g);
        } else if (fresh) {
          subscribe.push(g);
        }
        g.name = sg.ServiceGroupName || id;
        g.tenantID = t.TenantID;
        g.tenantName = t.Name || t.TenantID;
      }
    }
    for (const [id, g] of groups) {
      if (seen.has(id)) continue;
      groups.delete(id);
      dirty.delete(g);
      if (!fresh) request('Unsubscribe', { ServiceGroupID: id }).catch(() => {});
    }
    layout();
    await Promise.all(subscribe.map((g) => subscribeGroup(g, mine)));
  }

  async function subscribeGroup(g, mine) {
    // a new subscription's initial data replaces whatever the card held
    resetGroup(g);
    try {
      await request('Subscribe', { ServiceGroupID: g.id });
    } catch (err) {
      if (mine !== epoch || err instanceof Closed) throw err;
      if (err.type === 'RouterDisconnectedFault') return; // the RouterDisconnected event follows
      g.unavailable = err.message || err.type;
      markDirty(g);
    }
  }

  // ---- events ---------------------------------------------------------

  function onEvent(m) {
    switch (m.event) {
      case 'SessionsUpdated':
        onSessionsUpdated(m);
        break;
      case 'InitialDataComplete': {
        const g = groups.get(m.ServiceGroupID);
        if (!g) return;
        g.complete = true;
        lastUpdate = new Date();
        markDirty(g);
        break;
      }
      case 'KeepAlive':
        request('Heartbeat').then(setClock, () => {});
        break;
      case 'RouterDisconnected': {
        // the session and every subscription are gone; the socket stays
        const mine = ++epoch;
        for (const p of pending.values()) p.reject(new Closed('router disconnected'));
        pending.clear();
        clearQueues();
        setState('router');
        startSession(mine);
        break;
      }
    }
  }

  // onSessionsUpdated applies the updates in order: Add inserts, Remove
  // deletes by CallID, Modify replaces the session; then the list is put in
  // QueuePosition order (the session asked for position updates).
  function onSessionsUpdated(m) {
    const g = groups.get(m.ServiceGroupID);
    if (!g) return;
    for (const u of m.SessionUpdates || []) {
      const s = u.Session;
      if (!s || !s.CallID) continue;
      switch (u.UpdateType) {
        case 'Add':
          g.byId.set(s.CallID, s);
          if (g.complete) g.fresh.add(s.CallID);
          break;
        case 'Modify':
          if (g.byId.has(s.CallID)) g.byId.set(s.CallID, s);
          break;
        case 'Remove':
          g.byId.delete(s.CallID);
          g.fresh.delete(s.CallID);
          if (g.complete) g.lastLeft = { cause: u.RemoveCause || 'None', at: Date.now() };
          break;
      }
    }
    g.list = Array.from(g.byId.values()).sort((a, b) => a.QueuePosition - b.QueuePosition);
    lastUpdate = new Date();
    markDirty(g);
  }

  // ---- model ----------------------------------------------------------

  function newGroup(id) {
    return {
      id: id,
      name: id,
      tenantID: '',
      tenantName: '',
      byId: new Map(),
      list: [],
      complete: false,
      lastLeft: null,
      fresh: new Set(),
      unavailable: '',
      view: null,
    };
  }

  function resetGroup(g) {
    g.byId = new Map();
    g.list = [];
    g.complete = false;
    g.lastLeft = null;
    g.fresh.clear();
    g.unavailable = '';
    markDirty(g);
  }

  function clearQueues() {
    for (const g of groups.values()) resetGroup(g);
  }

  function markDirty(g) {
    dirty.add(g);
    if (!renderTimer) renderTimer = setTimeout(flush, RENDER_DELAY_MS);
  }

  function flush() {
    renderTimer = 0;
    for (const g of dirty) renderGroup(g);
    dirty.clear();
    updateTotals();
  }

  // ---- view -----------------------------------------------------------

  // layout builds one section per tenant and one card per group, in name
  // order, reusing the cards that exist.
  function layout() {
    const tenants = new Map();
    for (const g of groups.values()) {
      if (!tenants.has(g.tenantID)) tenants.set(g.tenantID, { name: g.tenantName, groups: [] });
      tenants.get(g.tenantID).groups.push(g);
    }
    const byName = (a, b) => a.name.localeCompare(b.name, undefined, { sensitivity: 'base' });
    const sections = [];
    for (const [tid, t] of Array.from(tenants).sort((a, b) => byName(a[1], b[1]))) {
      const sec = h('section', 'tenant');
      sec.dataset.tenant = tid;
      sec.append(h('h2', 'tenant-name', t.name));
      const grid = h('div', 'grid');
      for (const g of t.groups.sort(byName)) {
        if (!g.view) g.view = buildCard(g);
        g.view.name.textContent = g.name;
        g.view.card.title = g.tenantName + ' / ' + g.name + ' (' + g.id + ')';
        grid.append(g.view.card);
        markDirty(g);
      }
      sec.append(grid);
      sections.push(sec);
    }
    ui.board.replaceChildren(...sections);
    updateTotals();
  }

  function buildCard(g) {
    const card = h('article', 'card loading');
    card.dataset.group = g.id;
    const head = h('header', 'card-head');
    const title = h('div', 'title');
    const name = h('h3', 'group-name', g.name);
    const stats = h('p', 'stats');
    const longest = h('b', 'longest', '—');
    stats.append(document.createTextNode('longest wait '), longest);
    title.append(name, stats);
    const total = h('div', 'total');
    const count = h('span', 'count', '0');
    total.append(count, h('span', 'count-label', 'waiting'));
    head.append(title, total);
    const rows = h('ol', 'sessions');
    const more = h('p', 'more');
    more.hidden = true;
    const note = h('p', 'note');
    note.hidden = true;
    const left = h('p', 'last-left');
    left.hidden = true;
    card.append(head, rows, more, note, left);
    return { card, name, count, longest, rows, more, note, left, rowById: new Map(), oldest: null };
  }

  function buildRow(s) {
    const li = h('li', 'row');
    const pos = h('span', 'pos');
    const media = h('span', 'media');
    const wait = h('span', 'wait');
    const cust = h('span', 'cust');
    const agent = h('span', 'agent');
    li.append(pos, media, wait, cust, agent);
    li.dataset.callId = s.CallID;
    li.addEventListener('animationend', () => li.classList.remove('new'));
    return { li, pos, media, wait, cust, agent, since: 0 };
  }

  function fillRow(r, s) {
    r.pos.textContent = String(s.QueuePosition);
    const m = MEDIA[s.MediaType] || [s.MediaType || '?', 'none'];
    r.media.textContent = m[0];
    r.media.className = 'media media-' + m[1];
    r.since = Date.parse(s.TimeEnteredQueue) || 0;
    r.cust.textContent = s.CustomerInformation || '—';
    r.agent.textContent = s.PreferredAgentID ? 'agent ' + s.PreferredAgentID : '';
    r.agent.hidden = !s.PreferredAgentID;
    const tip = ['CallID ' + s.CallID];
    if (s.DialedNumber) tip.push('dialed ' + s.DialedNumber);
    for (const i of s.IVRInformation || []) tip.push(i.Label + ': ' + i.Data);
    if (r.since) tip.push('entered ' + new Date(r.since).toLocaleString());
    r.li.title = tip.join('\n');
  }

  function renderGroup(g) {
    const v = g.view;
    if (!v) return;
    const n = g.list.length;
    v.count.textContent = String(n);
    v.card.classList.toggle('loading', !g.complete && !g.unavailable);
    v.card.classList.toggle('idle', n === 0);
    v.card.classList.toggle('unavailable', !!g.unavailable);
    v.note.hidden = !g.unavailable;
    v.note.textContent = g.unavailable ? 'unavailable: ' + g.unavailable : '';

    let oldest = null;
    for (const s of g.list) {
      const t = Date.parse(s.TimeEnteredQueue);
      if (t && (oldest === null || t < oldest)) oldest = t;
    }
    v.oldest = oldest;

    // keyed rows: a row that stays keeps its element, so only new rows animate
    const shown = g.list.slice(0, MAX_ROWS);
    const keep = new Map();
    shown.forEach((s, i) => {
      let r = v.rowById.get(s.CallID);
      if (!r) {
        r = buildRow(s);
        if (g.fresh.has(s.CallID)) r.li.classList.add('new');
      }
      fillRow(r, s);
      keep.set(s.CallID, r);
      const at = v.rows.children[i];
      if (at !== r.li) v.rows.insertBefore(r.li, at || null);
    });
    while (v.rows.children.length > shown.length) v.rows.lastChild.remove();
    v.rowById = keep;
    g.fresh.clear();

    v.more.hidden = n <= MAX_ROWS;
    v.more.textContent = n > MAX_ROWS ? '+' + (n - MAX_ROWS) + ' more' : '';
    tickGroup(g, Date.now());
  }

  // The router's clock, from the replies to Initialize and Heartbeat: the
  // simulator's (or a capture played faster) is not this machine's, and
  // waits are measured by it.
  const routerClock = { at: 0, local: 0, rate: 1 };
  function setClock(result) {
    const t = result && Date.parse(result.RouterTime);
    if (!t) return;
    routerClock.at = t;
    routerClock.local = Date.now();
    routerClock.rate = typeof result.RouterClockRate === 'number' ? result.RouterClockRate : 1;
  }
  function routerNow(now) {
    return routerClock.at ? routerClock.at + routerClock.rate * (now - routerClock.local) : now;
  }

  // tickGroup refreshes what moves with the clock: waits (by the router's
  // clock), longest wait, the "last left" line.
  function tickGroup(g, now) {
    const v = g.view;
    if (!v) return;
    const rnow = routerNow(now);
    let level = '';
    if (v.oldest === null) {
      v.longest.textContent = '—';
    } else {
      const s = Math.max(0, rnow - v.oldest) / 1000;
      v.longest.textContent = duration(s);
      level = waitLevel(s);
    }
    v.card.dataset.level = level;
    for (const r of v.rowById.values()) {
      const s = r.since ? Math.max(0, rnow - r.since) / 1000 : 0;
      r.wait.textContent = r.since ? duration(s) : '—';
      r.wait.dataset.level = r.since ? waitLevel(s) : '';
    }
    const left = g.lastLeft;
    const showLeft = !!left && now - left.at < LAST_LEFT_MS;
    v.left.hidden = !showLeft;
    if (showLeft) v.left.textContent = 'last left: ' + left.cause;
  }

  setInterval(() => {
    const now = Date.now();
    for (const g of groups.values()) tickGroup(g, now);
  }, 1000);

  connect();
})();
