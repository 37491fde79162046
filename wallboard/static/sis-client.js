// sis-client.js: a client of SIS Bridge's Session Information protocol
// (docs/protocol.md, docs/asyncapi.yaml) as one ES module, no build step,
// no dependency. In a browser it uses the page's WebSocket; in Node give
// it one (Node 22's global WebSocket, or the ws package's).
//
//   import { SisClient } from '/sis-client.js';
//   const c = new SisClient({ url: 'ws://127.0.0.1:8080/sis/v1', positions: true,
//     onEvent: (e) => console.log(e.event, e.ServiceGroupID) });
//   await c.connect();
//   await c.subscribe({ ServiceGroupID: 'acme-sales' });
//   c.view('acme-sales'); // {seq, sessions, complete}
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
 * @typedef {object} SisClientOptions
 * @property {string} url the gateway's WebSocket URL (…/sis/v1)
 * @property {boolean} [positions=false] SendQueuePositionUpdates
 * @property {number} [maxEventsPerSecond] the rate cap (1 to 100; protocol §12)
 * @property {string} [logonID] a host administrator, when the gateway asks for one
 * @property {string} [password]
 * @property {typeof WebSocket} [WebSocket] the WebSocket class; default globalThis.WebSocket
 * @property {(event: object) => void} [onEvent] every event, once the mirror has applied it
 * @property {(state: string, detail: string) => void} [onState] connecting, live, router, reconnecting, refused
 * @property {number} [minBackoff=100] milliseconds before the first new attempt; doubling…
 * @property {number} [maxBackoff=5000] …up to this
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
  }

  /** Applies one event; it throws on an update that does not fit. */
  apply(e) {
    if (e.event === 'InitialDataComplete') {
      this.seq.set(e.ServiceGroupID, e.Seq);
      this.complete.add(e.ServiceGroupID);
      if (!this.groups.has(e.ServiceGroupID)) this.groups.set(e.ServiceGroupID, []);
      return;
    }
    if (e.event !== 'SessionsUpdated') return;
    const list = this.groups.get(e.ServiceGroupID) || [];
    for (const u of e.SessionUpdates) {
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
    if (this.positions) list.sort((a, b) => a.QueuePosition - b.QueuePosition);
    this.groups.set(e.ServiceGroupID, list);
    this.seq.set(e.ServiceGroupID, e.Seq);
  }

  /** Forgets a group. @param {string} group */
  drop(group) {
    this.groups.delete(group);
    this.seq.delete(group);
    this.complete.delete(group);
  }
}

/** A session with a gateway that outlives its connections. */
export class SisClient {
  /** @param {SisClientOptions} opts */
  constructor(opts) {
    this.opts = Object.assign({ positions: false, minBackoff: 100, maxBackoff: 5000 }, opts);
    this.WebSocket = opts.WebSocket || globalThis.WebSocket;
    this.mirror = new Mirror(this.opts.positions);
    /** @type {Map<string, object>} groups followed, with what they were asked with */ this.wanted = new Map();
    /** @type {Map<string, object>} tenant-wide subscriptions */ this.tenants = new Map();
    this.resuming = new Set();
    this.left = new Set(); // groups unsubscribed: their late events are not taken for a tenant's new group
    this.stats = { connects: 0, resumed: 0, resent: 0, gaps: 0, routerDisconnects: 0 };
    this.ws = null;
    this.live = false;
    this.closed = false;
    this.attempts = 0;
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

  /**
   * Subscribes (any params of protocol §3, §9, §10) and follows the groups
   * from then on, across reconnections.
   * @param {object} params
   */
  async subscribe(params) {
    const res = await this.request('Subscribe', params);
    const asked = { Statistics: params.Statistics, Sessions: params.Sessions, MediaTypes: params.MediaTypes };
    if (params.AllGroups) this.tenants.set(params.TenantID, asked);
    for (const g of res.ServiceGroupIDs || (res.ServiceGroupID ? [res.ServiceGroupID] : [])) {
      this.left.delete(g);
      if (!this.wanted.has(g)) this.wanted.set(g, asked);
    }
    return res;
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
    return { seq: this.mirror.seq.get(group) || 0, sessions: (this.mirror.groups.get(group) || []).slice(), complete: this.mirror.complete.has(group) };
  }

  /** The groups followed. @returns {string[]} */
  groups() {
    return Array.from(this.wanted.keys()).sort();
  }

  /** Sends a request and resolves with its result. */
  request(op, params) {
    const ws = this.ws;
    return new Promise((resolve, reject) => {
      if (!ws || ws.readyState !== 1) {
        reject(new Closed('not connected'));
        return;
      }
      const id = this.nextId++;
      this.pending.set(id, { resolve, reject });
      ws.send(JSON.stringify(Object.assign({ op, id }, params || {})));
    });
  }

  // ---- connection ------------------------------------------------------

  state(s, detail) {
    if (this.opts.onState) this.opts.onState(s, detail || '');
  }

  dial() {
    this.state(this.stats.connects ? 'reconnecting' : 'connecting');
    const ws = new this.WebSocket(this.opts.url, SUBPROTOCOL);
    this.ws = ws;
    ws.onopen = () => ws === this.ws && this.initialize();
    ws.onmessage = (ev) => ws === this.ws && this.receive(typeof ev.data === 'string' ? ev.data : String(ev.data));
    ws.onclose = () => ws === this.ws && this.dropped();
    ws.onerror = () => {};
  }

  dropped() {
    this.ws = null;
    this.live = false;
    this.failPending('connection closed');
    if (!this.closed) this.later(() => this.dial());
  }

  later(fn) {
    const d = Math.min(this.opts.minBackoff * 2 ** Math.min(this.attempts++, 20), this.opts.maxBackoff);
    setTimeout(() => !this.closed && fn(), d / 2 + Math.random() * (d / 2));
  }

  failPending(why) {
    for (const p of this.pending.values()) p.reject(new Closed(why));
    this.pending.clear();
  }

  async initialize() {
    const params = { LogonID: this.opts.logonID || '', Password: this.opts.password || '', SendQueuePositionUpdates: this.opts.positions };
    if (this.opts.maxEventsPerSecond) params.MaxEventsPerSecond = this.opts.maxEventsPerSecond;
    try {
      await this.request('Initialize', params);
    } catch (err) {
      if (err instanceof Closed) return;
      this.state(err.type === 'RouterDisconnectedFault' ? 'router' : 'refused', err.message);
      if (err.type === 'InvalidUserFault') {
        this.close();
        return;
      }
      this.later(() => this.initialize());
      return;
    }
    this.up();
  }

  // up: the session is initialized; every group is subscribed again, then
  // every tenant (answered after the groups: only new groups come of them).
  up() {
    this.live = true;
    this.attempts = 0;
    this.stats.connects++;
    this.state('live');
    for (const g of this.groups()) this.resubscribe(g);
    for (const [tenant, asked] of this.tenants) this.request('Subscribe', Object.assign({ TenantID: tenant, AllGroups: true }, asked)).catch(() => {});
    for (const w of this.waiters.splice(0)) w.resolve();
  }

  // resubscribe subscribes to g again, resuming from the mirror's Seq when
  // its view is complete; its events until the reply are not applied.
  resubscribe(g) {
    const params = Object.assign({ ServiceGroupID: g }, this.wanted.get(g));
    const had = this.mirror.complete.has(g);
    if (had) params.ResumeFromSeq = this.mirror.seq.get(g);
    else this.mirror.drop(g);
    this.resuming.add(g);
    this.request('Subscribe', params).then((res) => {
      this.resuming.delete(g);
      if (res.Resumed) this.stats.resumed++;
      else if (had) {
        this.stats.resent++;
        this.mirror.drop(g);
      }
    }, () => this.resuming.delete(g));
  }

  receive(data) {
    let m;
    try {
      m = JSON.parse(data);
    } catch {
      return;
    }
    if (m.event) this.event(m);
    else if (this.pending.has(m.id)) {
      const p = this.pending.get(m.id);
      this.pending.delete(m.id);
      if (m.fault) p.reject(new Fault(m.fault.type, m.fault.message));
      else p.resolve(m.result || {});
    }
  }

  event(m) {
    switch (m.event) {
      case 'KeepAlive':
        this.checkSeqs(m.Seqs || {});
        this.request('Heartbeat').catch(() => {});
        break;
      case 'RouterDisconnected':
        this.live = false;
        this.stats.routerDisconnects++;
        this.failPending('router disconnected');
        this.state('router', '');
        this.later(() => this.initialize());
        break;
      case 'ServiceGroupRemoved':
        this.wanted.delete(m.ServiceGroupID);
        this.mirror.drop(m.ServiceGroupID);
        break;
      case 'SessionsUpdated':
      case 'InitialDataComplete':
        if (!this.take(m)) return;
        break;
    }
    if (this.opts.onEvent) this.opts.onEvent(m);
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
      this.mirror.drop(g);
      this.request('Unsubscribe', { ServiceGroupID: g }).catch(() => {});
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
