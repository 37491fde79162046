// sis-client.js: a client of SIS Bridge's Session Information protocol
// (docs/protocol.md, docs/asyncapi.yaml) as one ES module, no build step,
// no dependency. In a browser it uses the page's WebSocket; in Node give
// it one (Node 22's global WebSocket, Node 20's with
// --experimental-websocket, or the ws package's).
//
//   import { SisClient } from '/sis-client.js';
//   const c = new SisClient({ url: 'ws://127.0.0.1:8080/sis/v1', positions: true,
//     onEvent: (e) => console.log(e.event, e.ServiceGroupID) });
//   await c.connect();
//   await c.subscribe({ ServiceGroupID: 'acme-sales' });
//   c.view('acme-sales'); // {seq, sessions, complete, statistics}
//
// It answers KeepAlives, reconnects with a doubling backoff, initializes
// again after RouterDisconnected, and subscribes again to every group it
// follows, resuming each from the Seq its mirror holds (ResumeFromSeq); a
// KeepAlive whose Seqs differ from the mirror's resumes that group too.
'use strict';

const SUBPROTOCOL = 'sis.v1.json';

/**
 * @typedef {object} SessionInfo
 * @property {string} ServiceGroupID
 * @property {string} CallID
 * @property {number} QueuePosition
 * @property {number} PreferredAgentID
 * @property {string} MediaType
 * @property {string} TimeEnteredQueue
 * @property {string} CustomerInformation
 * @property {string} DialedNumber
 * @property {{Label: string, Data: string}[]} IVRInformation
 */

/**
 * @typedef {object} Credentials
 * @property {string} LogonID
 * @property {string} Password
 */

/**
 * @typedef {object} SisClientOptions
 * @property {string} url the gateway's WebSocket URL (…/sis/v1)
 * @property {string} [directoryURL] GET /v1/groups; default: beside url
 * @property {boolean} [positions=false] SendQueuePositionUpdates
 * @property {number} [maxEventsPerSecond] the rate cap (1 to 100; protocol §12)
 * @property {string} [logonID] a host administrator, when the gateway asks for one
 * @property {string} [password]
 * @property {(message: string) => Promise<Credentials>} [login] asked for
 *   credentials when the gateway refuses the ones it has (message says why;
 *   empty the first time); without it InvalidUserFault ends the client
 * @property {typeof WebSocket} [WebSocket] the WebSocket class; default globalThis.WebSocket
 * @property {(event: object) => void} [onEvent] every event but KeepAlive, once the mirror has applied it
 * @property {(group: string) => void} [onReset] a group's mirror was dropped: full initial data follows
 * @property {(group: string, err: Error) => void} [onError] a Subscribe the client made by itself
 *   (after a reconnection or a gap) was refused
 * @property {(state: string, detail: string) => void} [onState] connecting, live, router (detail:
 *   the gateway's reason), reconnecting (detail: when), login, nolicense, error, refused (the end)
 * @property {number} [minBackoff=100] milliseconds before the first new connection; doubling…
 * @property {number} [maxBackoff=5000] …up to this
 * @property {number} [retryInitialize=2000] milliseconds between Initialize attempts while the
 *   router is disconnected or no seat is free
 */

/** A protocol fault answered to a request. */
export class Fault extends Error {
  /** @param {string} type @param {string} message */
  constructor(type, message) {
    super(message || type);
    this.type = type;
  }
}

/** The error of a request whose connection or session went away. */
export class Closed extends Error {}

// CLOSE_REASONS are words for close codes (protocol §6 and the WebSocket
// API's own) when the gateway gave none.
const CLOSE_REASONS = {
  1000: 'closed',
  1001: 'gateway shutting down',
  1006: 'connection lost',
  1009: 'frame too large',
  1011: 'gateway error',
  4008: 'heartbeat timeout',
  4009: 'client too slow',
};

/**
 * Mirror keeps the queues a session's events describe: apply every event
 * in order. With positions each group is ordered by QueuePosition after
 * every event.
 */
export class Mirror {
  /** @param {boolean} positions */
  constructor(positions) {
    this.positions = positions;
    /** @type {Map<string, SessionInfo[]>} */ this.groups = new Map();
    /** @type {Map<string, number>} */ this.seq = new Map();
    /** @type {Set<string>} */ this.complete = new Set();
    /** @type {Map<string, object>} the latest QueueStatistics */ this.stats = new Map();
  }

  /** Applies one event; it throws on an update that does not fit. */
  apply(e) {
    const g = e.ServiceGroupID;
    if (e.event === 'QueueStatistics') this.stats.set(g, e);
    if (e.event === 'InitialDataComplete') {
      this.seq.set(g, e.Seq);
      this.complete.add(g);
      if (!this.groups.has(g)) this.groups.set(g, []);
    }
    if (e.event !== 'SessionsUpdated') return;
    const list = this.groups.get(g) || [];
    for (const u of e.SessionUpdates) update(list, u);
    if (this.positions) list.sort((a, b) => a.QueuePosition - b.QueuePosition);
    this.groups.set(g, list);
    this.seq.set(g, e.Seq);
  }

  /** Forgets a group. @param {string} group */
  drop(group) {
    this.groups.delete(group);
    this.seq.delete(group);
    this.complete.delete(group);
    this.stats.delete(group);
  }
}

// update applies one SessionUpdate to a group's list.
function update(list, u) {
  const i = list.findIndex((s) => s.CallID === u.Session.CallID);
  if (u.UpdateType === 'Add') {
    if (i >= 0) throw new Error(`add of ${u.Session.CallID}, already there`);
    list.splice(Math.min(Math.max(u.Session.QueuePosition - 1, 0), list.length), 0, u.Session);
  } else if (i < 0) {
    throw new Error(`${u.UpdateType} of ${u.Session.CallID}, not there`);
  } else if (u.UpdateType === 'Remove') {
    list.splice(i, 1);
  } else {
    list[i] = u.Session;
  }
}

// basic is an HTTP Basic Authorization header.
function basic(c) {
  let bin = '';
  for (const b of new TextEncoder().encode(c.LogonID + ':' + c.Password)) bin += String.fromCharCode(b);
  return 'Basic ' + btoa(bin);
}

/** A session with a gateway that outlives its connections. */
export class SisClient {
  /** @param {SisClientOptions} opts */
  constructor(opts) {
    this.opts = Object.assign({ positions: false, minBackoff: 100, maxBackoff: 5000, retryInitialize: 2000 }, opts);
    this.WebSocket = opts.WebSocket || globalThis.WebSocket;
    /** @type {Credentials|null} in memory only */
    this.creds = opts.logonID ? { LogonID: opts.logonID, Password: opts.password || '' } : null;
    this.mirror = new Mirror(this.opts.positions);
    /** @type {Map<string, object>} groups followed, with what they were asked with */ this.wanted = new Map();
    /** @type {Map<string, object>} tenant-wide subscriptions */ this.tenants = new Map();
    this.resuming = new Set();
    this.left = new Set(); // groups unsubscribed: their late events are not taken for a tenant's new group
    this.stats = { connects: 0, resumed: 0, resent: 0, gaps: 0, routerDisconnects: 0, keepAlives: 0 };
    /** @type {{code: number, reason: string, at: Date}|null} how the last connection ended */
    this.lastClose = null;
    this.clock = { at: 0, local: 0, rate: 1 };
    this.ws = null;
    this.live = false;
    this.closed = false;
    this.attempts = 0;
    this.session = 0; // names the session: bumped at every new connection and RouterDisconnected
    this.nextId = 1;
    this.pending = new Map();
    this.waiters = [];
  }

  /** Connects and resolves once the session is up. @returns {Promise<void>} */
  connect() {
    if (!this.ws && !this.closed) this.dial();
    return this.ready();
  }

  /** Resolves when the session is up. @returns {Promise<void>} */
  ready() {
    if (this.live) return Promise.resolve();
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  /** Ends the session for good. */
  close() {
    this.closed = true;
    this.live = false;
    if (this.ws) this.ws.close(1000, 'client closed');
    this.failPending('client closed');
    for (const w of this.waiters.splice(0)) w.reject(new Closed('client closed'));
  }

  /** Forgets every subscription and starts a new session on a new connection. */
  restart() {
    this.wanted.clear();
    this.tenants.clear();
    this.left.clear();
    this.mirror = new Mirror(this.opts.positions);
    if (this.ws) this.ws.close(1000, 'starting over');
  }

  /**
   * Subscribes (any params of protocol §3, §9, §10) and follows the groups
   * from then on, across reconnections.
   * @param {object} params
   */
  subscribe(params) {
    return this.request('Subscribe', params, (res) => {
      const asked = { Statistics: params.Statistics, Sessions: params.Sessions, MediaTypes: params.MediaTypes };
      if (params.AllGroups) this.tenants.set(params.TenantID, asked);
      for (const g of res.ServiceGroupIDs || (res.ServiceGroupID ? [res.ServiceGroupID] : [])) {
        this.left.delete(g);
        if (!this.wanted.has(g)) this.wanted.set(g, asked);
      }
    });
  }

  /** Stops following a group. @param {string} group */
  async unsubscribe(group) {
    this.wanted.delete(group);
    this.left.add(group);
    this.mirror.drop(group);
    return this.request('Unsubscribe', { ServiceGroupID: group });
  }

  /** Ends a tenant-wide subscription. @param {string} tenant */
  async unsubscribeTenant(tenant) {
    this.tenants.delete(tenant);
    return this.request('Unsubscribe', { TenantID: tenant, AllGroups: true });
  }

  /** A group as the mirror holds it. @param {string} group */
  view(group) {
    const m = this.mirror;
    return { seq: m.seq.get(group) || 0, sessions: (m.groups.get(group) || []).slice(), complete: m.complete.has(group), statistics: m.stats.get(group) || null };
  }

  /** The groups followed. @returns {string[]} */
  groups() {
    return Array.from(this.wanted.keys()).sort();
  }

  /**
   * The router's time now in milliseconds, from its RouterTime and
   * RouterClockRate in the replies to Initialize and Heartbeat: a
   * simulated router's clock may run ahead or faster. This machine's
   * until the first reply.
   */
  routerNow(now = Date.now()) {
    const c = this.clock;
    return c.at ? c.at + c.rate * (now - c.local) : now;
  }

  /** The service group directory (GET /v1/groups), with the client's credentials. */
  async directory() {
    const url = this.opts.directoryURL || this.opts.url.replace(/^ws/, 'http').replace(/\/sis\/v1$/, '/v1/groups');
    for (;;) {
      const headers = { Accept: 'application/json' };
      if (this.creds) headers.Authorization = basic(this.creds);
      // credentials "omit": no browser login dialog on 401; the login option asks
      const res = await fetch(url, { headers, cache: 'no-store', credentials: 'omit' });
      if (res.status !== 401) {
        if (!res.ok) throw new Error(`GET ${url}: HTTP ${res.status}`);
        return res.json();
      }
      if (!this.opts.login) throw new Fault('InvalidUserFault', `GET ${url}: HTTP 401`);
      this.state('login');
      this.creds = await this.opts.login(this.creds ? 'These credentials may not list the service groups.' : 'Listing the service groups needs a login.');
    }
  }

  /**
   * Sends a request and resolves with its result. taken, if given, sees the
   * result as it arrives, before any message after it: a WebSocket may
   * hand over several messages before a promise's callbacks run.
   * @param {string} op @param {object} [params] @param {(result: object) => void} [taken]
   */
  request(op, params, taken) {
    const ws = this.ws;
    return new Promise((resolve, reject) => {
      if (!ws || ws.readyState !== 1) {
        reject(new Closed('not connected'));
        return;
      }
      const id = this.nextId++;
      this.pending.set(id, { resolve, reject, taken });
      ws.send(JSON.stringify(Object.assign({ op, id }, params || {})));
    });
  }

  // ---- connection ------------------------------------------------------

  state(s, detail) {
    if (this.opts.onState) this.opts.onState(s, detail || '');
  }

  dial() {
    this.state(this.lastClose ? 'reconnecting' : 'connecting');
    let ws;
    try {
      ws = new this.WebSocket(this.opts.url, SUBPROTOCOL);
    } catch (err) {
      this.dropped({ code: 1006, reason: String(err && err.message) });
      return;
    }
    this.ws = ws;
    const mine = ++this.session;
    ws.onopen = () => ws === this.ws && this.initialize(mine);
    ws.onmessage = (ev) => ws === this.ws && this.receive(typeof ev.data === 'string' ? ev.data : String(ev.data));
    ws.onclose = (ev) => ws === this.ws && this.dropped(ev);
    ws.onerror = () => {};
  }

  dropped(ev) {
    this.ws = null;
    this.live = false;
    this.session++;
    this.lastClose = { code: ev.code, reason: ev.reason || CLOSE_REASONS[ev.code] || '', at: new Date() };
    this.failPending('connection closed');
    if (this.closed) return;
    const d = Math.min(this.opts.minBackoff * 2 ** Math.min(this.attempts++, 20), this.opts.maxBackoff);
    const wait = d / 2 + Math.random() * (d / 2);
    this.state('reconnecting', `retry in ${Math.max(1, Math.round(wait / 1000))} s`);
    setTimeout(() => !this.closed && this.dial(), wait);
  }

  failPending(why) {
    for (const p of this.pending.values()) p.reject(new Closed(why));
    this.pending.clear();
  }

  // initialize starts a session on the connection, retrying as its faults
  // say, until it is up or the session it belongs to is gone.
  async initialize(mine) {
    while (mine === this.session && !this.closed) {
      const params = { LogonID: this.creds ? this.creds.LogonID : '', Password: this.creds ? this.creds.Password : '', SendQueuePositionUpdates: this.opts.positions };
      if (this.opts.maxEventsPerSecond) params.MaxEventsPerSecond = this.opts.maxEventsPerSecond;
      try {
        this.setClock(await this.request('Initialize', params));
        if (mine === this.session) this.up();
        return;
      } catch (err) {
        if (err instanceof Closed || mine !== this.session) return;
        if (!(await this.refused(err))) return;
      }
    }
  }

  // refused waits as an Initialize fault asks; false: give up for good.
  async refused(err) {
    if (err.type === 'InvalidUserFault' && this.opts.login) {
      this.state('login');
      this.creds = await this.opts.login(this.creds ? 'Wrong LogonID or password.' : '');
      return true;
    }
    if (err.type === 'InvalidUserFault') {
      this.state('refused', err.message);
      this.close();
      return false;
    }
    const states = { RouterDisconnectedFault: 'router', NoLicenseFault: 'nolicense' };
    this.state(states[err.type] || 'error', err.message.replace(/^the router is not connected: /, ''));
    await new Promise((r) => setTimeout(r, this.opts.retryInitialize));
    return true;
  }

  setClock(result) {
    const t = result && Date.parse(result.RouterTime);
    if (!t) return;
    this.clock = { at: t, local: Date.now(), rate: typeof result.RouterClockRate === 'number' ? result.RouterClockRate : 1 };
  }

  // up: the session is initialized; every group is subscribed again, then
  // every tenant (answered after the groups: only new groups come of them).
  up() {
    this.live = true;
    this.attempts = 0;
    this.stats.connects++;
    for (const g of this.groups()) this.resubscribe(g);
    for (const [tenant, asked] of this.tenants) {
      this.request('Subscribe', Object.assign({ TenantID: tenant, AllGroups: true }, asked)).catch((err) => this.failed(tenant, err));
    }
    this.state('live');
    for (const w of this.waiters.splice(0)) w.resolve();
  }

  failed(group, err) {
    if (err instanceof Closed || err.type === 'RouterDisconnectedFault') return; // taken up again with the next session
    if (this.opts.onError) this.opts.onError(group, err);
  }

  // resubscribe subscribes to g again, resuming from the mirror's Seq when
  // its view is complete; its events until the reply are not applied.
  resubscribe(g) {
    const params = Object.assign({ ServiceGroupID: g }, this.wanted.get(g));
    const had = this.mirror.complete.has(g);
    if (had) params.ResumeFromSeq = this.mirror.seq.get(g);
    else this.reset(g);
    this.resuming.add(g);
    this.request('Subscribe', params, (res) => {
      this.resuming.delete(g);
      if (res.Resumed) this.stats.resumed++;
      else if (had) {
        this.stats.resent++;
        this.reset(g);
      }
    }).catch((err) => {
      this.resuming.delete(g);
      this.failed(g, err);
    });
  }

  reset(g) {
    this.mirror.drop(g);
    if (this.opts.onReset) this.opts.onReset(g);
  }

  receive(data) {
    let m;
    try {
      m = JSON.parse(data);
    } catch {
      return;
    }
    if (!m || typeof m !== 'object') return;
    if (m.event) this.event(m);
    else if (this.pending.has(m.id)) {
      const p = this.pending.get(m.id);
      this.pending.delete(m.id);
      if (m.fault) p.reject(new Fault(m.fault.type, m.fault.message));
      else {
        if (p.taken) p.taken(m.result || {});
        p.resolve(m.result || {});
      }
    }
  }

  event(m) {
    switch (m.event) {
      case 'KeepAlive':
        this.stats.keepAlives++;
        this.checkSeqs(m.Seqs || {});
        this.request('Heartbeat', {}, (r) => this.setClock(r)).catch(() => {});
        return;
      case 'RouterDisconnected':
        this.routerLost();
        break;
      case 'ServiceGroupRemoved':
        this.wanted.delete(m.ServiceGroupID);
        this.mirror.drop(m.ServiceGroupID);
        break;
      case 'SessionsUpdated':
      case 'InitialDataComplete':
      case 'QueueStatistics':
        if (!this.take(m)) return;
        break;
    }
    if (this.opts.onEvent) this.opts.onEvent(m);
  }

  // routerLost: the session and its subscriptions are gone, the connection
  // stays; a new session is asked for at once, then as its faults say.
  routerLost() {
    const mine = ++this.session;
    this.live = false;
    this.stats.routerDisconnects++;
    this.failPending('router disconnected');
    this.state('router', '');
    this.initialize(mine);
  }

  // take applies a group's event to the mirror; one that does not fit has
  // the group sent again in full.
  take(m) {
    const g = m.ServiceGroupID;
    if (!this.wanted.has(g)) {
      const tenant = this.tenants.values().next();
      if (tenant.done || this.left.has(g)) return false; // a group being unsubscribed
      this.wanted.set(g, tenant.value); // added to a tenant followed with AllGroups
    }
    if (this.resuming.has(g)) return false;
    try {
      this.mirror.apply(m);
      return true;
    } catch {
      this.request('Unsubscribe', { ServiceGroupID: g }).catch(() => {});
      this.reset(g);
      this.resubscribe(g);
      return false;
    }
  }

  // checkSeqs resumes a complete group whose Seq in a KeepAlive differs
  // from the mirror's: it missed an event (protocol §11).
  checkSeqs(seqs) {
    for (const [g, seq] of Object.entries(seqs)) {
      if (!this.wanted.has(g) || !this.mirror.complete.has(g) || this.mirror.seq.get(g) === seq) continue;
      this.stats.gaps++;
      this.request('Unsubscribe', { ServiceGroupID: g }).catch(() => {});
      this.resubscribe(g);
    }
  }
}
