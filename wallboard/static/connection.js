// The wallboard's session with the gateway (protocol sis.v1.json, see
// docs/protocol.md): one WebSocket, Initialize retried as its faults say,
// Heartbeat answers to KeepAlive, reconnection with a doubling delay, and
// the group directory (GET /v1/groups). It knows nothing of the page.
'use strict';

const SUBPROTOCOL = 'sis.v1.json';
const WS_PATH = '/sis/v1';
const GROUPS_PATH = '/v1/groups';
const ROUTER_RETRY_MS = 2000; // Initialize retry while the router is down
const LICENSE_RETRY_MS = 5000; // Initialize retry while no seat is free
const BACKOFF_MIN_MS = 1000; // reconnect delay after a close, doubling...
const BACKOFF_MAX_MS = 15000; // ...up to this

// CLOSE_REASONS are the words for close codes (protocol section 6 and the
// browser's own) when the gateway gave none.
const CLOSE_REASONS = {
  1000: 'closed',
  1001: 'gateway shutting down',
  1006: 'connection lost',
  1009: 'frame too large',
  1011: 'gateway error',
  4008: 'heartbeat timeout',
  4009: 'client too slow',
};

// Fault is a protocol fault answered to a request.
export class Fault extends Error {
  constructor(type, message) {
    super(message || type);
    this.type = type;
  }
}

// Closed is the error of a request whose session or socket went away.
export class Closed extends Error {}

export function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

function basic(user, pass) {
  const bytes = new TextEncoder().encode(user + ':' + pass);
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return 'Basic ' + btoa(bin);
}

function message(err) {
  return String(err && err.message ? err.message : err);
}

// Gateway is the session. hooks:
//   state(state, detail): connecting, login, live, router, reconnecting,
//     nolicense or error, with words on why (the router's reason)
//   event(m): every event but KeepAlive and RouterDisconnected
//   ready(epoch): a session is initialized; subscribe now (epoch names it)
//   lost(): the queues are unknown (socket closed or router disconnected)
//   login(message): resolves with {LogonID, Password} once asked
//   clock(result): the reply of Initialize or Heartbeat (router time)
//   keepAlive(seqs): a KeepAlive's Seqs (protocol section 11), before it
//     is answered
// perSecond is the session's MaxEventsPerSecond (section 12; 0: no cap).
export class Gateway {
  constructor(hooks, perSecond) {
    this.hooks = hooks;
    this.perSecond = perSecond || 0;
    this.lose = null; // a test hook: events for which it returns true are dropped, as if lost
    this.ws = null;
    this.epoch = 0; // bumped on every new socket and RouterDisconnected
    this.nextId = 1;
    this.pending = new Map();
    this.creds = null; // in memory only, never stored
    this.backoff = BACKOFF_MIN_MS;
    this.lastClose = '';
  }

  // restart ends the connection and starts over on a new one (the
  // credentials are kept): every subscription is made anew.
  restart(why) {
    if (this.ws) this.ws.close(1000, why || 'starting over');
  }

  // stale reports whether the session an epoch named is gone.
  stale(epoch) {
    return epoch !== this.epoch;
  }

  connect() {
    const scheme = location.protocol === 'https:' ? 'wss://' : 'ws://';
    let sock;
    try {
      sock = new WebSocket(scheme + location.host + WS_PATH, SUBPROTOCOL);
    } catch (err) {
      this.reconnectLater(message(err));
      return;
    }
    this.ws = sock;
    const mine = ++this.epoch;
    this.state(this.lastClose ? 'reconnecting' : 'connecting');
    sock.onopen = () => sock === this.ws && this.start(mine);
    sock.onmessage = (ev) => sock === this.ws && this.receive(ev.data);
    sock.onclose = (ev) => sock === this.ws && this.closed(ev);
  }

  receive(data) {
    if (typeof data !== 'string') return;
    let m;
    try {
      m = JSON.parse(data);
    } catch (_) {
      return;
    }
    if (!m || typeof m !== 'object') return;
    if (this.lose && m.event && this.lose(m)) return;
    if (m.event === 'KeepAlive') {
      this.hooks.keepAlive(m.Seqs || {});
      this.request('Heartbeat').then((r) => this.hooks.clock(r), () => {});
    }
    else if (m.event === 'RouterDisconnected') this.routerLost();
    else if (m.event) this.hooks.event(m);
    else if (typeof m.id === 'number') this.reply(m);
  }

  closed(ev) {
    this.ws = null;
    this.epoch++;
    this.failPending('connection closed');
    const reason = ev.reason || CLOSE_REASONS[ev.code] || ''; // the gateway's words first
    this.lastClose = ev.code + (reason ? ' ' + reason : '') + ' at ' + new Date().toLocaleTimeString();
    this.hooks.lost();
    this.reconnectLater();
  }

  // routerLost: the session and every subscription are gone; the socket stays.
  routerLost() {
    const mine = ++this.epoch;
    this.failPending('router disconnected');
    this.hooks.lost();
    this.state('router', '');
    this.start(mine);
  }

  failPending(why) {
    for (const p of this.pending.values()) p.reject(new Closed(why));
    this.pending.clear();
  }

  reconnectLater(why) {
    const delay = this.backoff;
    this.backoff = Math.min(this.backoff * 2, BACKOFF_MAX_MS);
    this.state('reconnecting', (why ? why + '; ' : '') + 'retry in ' + Math.round(delay / 1000) + ' s');
    setTimeout(() => this.connect(), delay);
  }

  state(state, detail) {
    const parts = [];
    if (detail) parts.push(detail);
    if (this.lastClose && state !== 'router') parts.push('last close: ' + this.lastClose);
    this.hooks.state(state, parts.join(' · '), detail || '');
  }

  request(op, params) {
    const sock = this.ws;
    return new Promise((resolve, reject) => {
      if (!sock || sock.readyState !== WebSocket.OPEN) {
        reject(new Closed('not connected'));
        return;
      }
      const id = this.nextId++;
      this.pending.set(id, { resolve, reject });
      sock.send(JSON.stringify(Object.assign({ op: op, id: id }, params || {})));
    });
  }

  reply(m) {
    const p = this.pending.get(m.id);
    if (!p) return;
    this.pending.delete(m.id);
    if (m.fault) p.reject(new Fault(m.fault.type, m.fault.message));
    else p.resolve(m.result || {});
  }

  // start initializes a session, retrying as the faults say, then hands it
  // to ready. It gives up once the socket or session it belongs to is gone.
  async start(mine) {
    while (!this.stale(mine)) {
      try {
        const init = {
          LogonID: this.creds ? this.creds.LogonID : '',
          Password: this.creds ? this.creds.Password : '',
          SendQueuePositionUpdates: true,
        };
        if (this.perSecond > 0) init.MaxEventsPerSecond = this.perSecond;
        this.hooks.clock(await this.request('Initialize', init));
        break;
      } catch (err) {
        if (this.stale(mine) || err instanceof Closed) return;
        await this.refused(err);
      }
    }
    if (this.stale(mine)) return;
    try {
      await this.hooks.ready(mine);
    } catch (err) {
      if (this.stale(mine) || err instanceof Closed) return;
      this.state('error', message(err));
      await sleep(ROUTER_RETRY_MS);
      if (!this.stale(mine)) this.ws.close(1000, 'starting over');
      return;
    }
    if (this.stale(mine)) return;
    this.backoff = BACKOFF_MIN_MS;
    this.state('live');
  }

  // refused waits as an Initialize fault asks (asking for a login on
  // InvalidUserFault).
  async refused(err) {
    switch (err.type) {
      case 'InvalidUserFault':
        this.state('login');
        this.creds = await this.hooks.login(this.creds ? 'Wrong LogonID or password.' : '');
        return;
      case 'RouterDisconnectedFault':
        this.state('router', err.message.replace(/^the router is not connected: /, ''));
        return sleep(ROUTER_RETRY_MS);
      case 'NoLicenseFault':
        this.state('nolicense', 'retrying');
        return sleep(LICENSE_RETRY_MS);
      default:
        this.state('error', err.message);
        return sleep(ROUTER_RETRY_MS);
    }
  }

  // directory fetches GET /v1/groups, asking for a login on 401.
  async directory() {
    for (;;) {
      const headers = { Accept: 'application/json' };
      if (this.creds) headers.Authorization = basic(this.creds.LogonID, this.creds.Password);
      // credentials "omit": no browser login dialog on 401, the page asks itself
      const res = await fetch(GROUPS_PATH, { headers: headers, cache: 'no-store', credentials: 'omit' });
      if (res.status === 401) {
        this.state('login');
        this.creds = await this.hooks.login(this.creds ? 'These credentials may not list the service groups.' : 'Listing the service groups needs a login.');
        continue;
      }
      if (!res.ok) throw new Error('GET ' + GROUPS_PATH + ': HTTP ' + res.status);
      return res.json();
    }
  }
}
