// The session list of one group, opened by a click on its tile: every
// session waiting in queue order with its wait ticking, the group's
// figures, and the latest departures with their causes in plain words.
'use strict';

import { clock, duration, media, cause, mask, percent } from './format.js';
import { level } from './settings.js';

const MAX_ROWS = 500; // rows drawn; the rest are counted
const DEPARTURES = 8; // departures listed
const NEW_MS = 2000; // how long an arrival stays highlighted

function h(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

export class Detail {
  // el: the panel; close(): the supervisor closed it.
  constructor(el, close) {
    this.el = el;
    this.settings = null;
    this.group = null;
    this.q = el.querySelector('.detail-name');
    this.tenant = el.querySelector('.detail-tenant');
    this.figures = el.querySelector('.detail-figures');
    this.state = el.querySelector('.detail-state');
    this.rows = el.querySelector('.detail-rows');
    this.more = el.querySelector('.detail-more');
    this.left = el.querySelector('.detail-left');
    el.querySelector('.detail-close').addEventListener('click', close);
    el.addEventListener('keydown', (ev) => ev.key === 'Escape' && close());
    this.clear();
  }

  clear() {
    this.byId = new Map(); // CallID -> SessionInfo
    this.rowById = new Map(); // CallID -> row
    this.departures = [];
    this.departed = 0; // departures so far...
    this.drawn = -1; // ...and when the list of them was drawn
    this.complete = false;
    this.rows.replaceChildren();
    this.left.replaceChildren();
  }

  setSettings(s) {
    this.settings = s;
    for (const [id, r] of this.rowById) {
      r.s = null; // masking may have changed: fill every cell
      this.fill(r, this.byId.get(id));
    }
    this.renderDepartures();
  }

  isOpen(id) {
    return this.group !== null && this.group.id === id;
  }

  open(g) {
    this.group = g;
    this.clear();
    this.q.textContent = g.name;
    this.tenant.textContent = g.tenantName + ' · ' + g.id;
    this.el.hidden = false;
    this.el.dataset.group = g.id;
    this.setState('loading the sessions…');
    this.stats(g.stats);
    this.el.focus();
  }

  close() {
    this.group = null;
    this.el.hidden = true;
    this.clear();
  }

  setState(text) {
    this.state.textContent = text;
    this.state.hidden = !text;
  }

  // reset: a subscription's initial data follows; it replaces the list.
  reset() {
    const g = this.group;
    this.clear();
    if (g) this.setState('loading the sessions…');
  }

  failed(message) {
    this.setState('the sessions cannot be shown: ' + message);
  }

  stats(s) {
    if (!s) {
      this.figures.textContent = '';
      return;
    }
    const removed = s.Removed || {};
    const parts = [s.Waiting + ' waiting', s.Entered + ' entered in the last ' + Math.round(s.Window / 60) + ' min'];
    for (const [c, n] of Object.entries(removed)) parts.push(n + ' ' + cause(c));
    if (s.ServiceLevel !== null) parts.push(percent(s.ServiceLevel) + ' answered within ' + s.ServiceLevelThreshold + ' s');
    if (s.EstimatedWait !== null) parts.push('estimated wait ' + duration(s.EstimatedWait));
    this.figures.textContent = parts.join(' · ');
  }

  // apply takes a SessionsUpdated of the group: Add inserts, Modify
  // replaces, Remove deletes (a departure once the initial data is in).
  apply(m, routerNow) {
    for (const u of m.SessionUpdates || []) {
      const s = u.Session;
      if (!s || !s.CallID) continue;
      if (u.UpdateType === 'Remove') {
        const had = this.byId.get(s.CallID) || s;
        this.byId.delete(s.CallID);
        if (this.complete) this.depart(had, u.RemoveCause, routerNow);
      } else if (u.UpdateType === 'Add' || this.byId.has(s.CallID)) {
        if (u.UpdateType === 'Add' && this.complete) s.fresh = true;
        this.byId.set(s.CallID, s);
      }
    }
  }

  depart(s, why, routerNow) {
    const entered = Date.parse(s.TimeEnteredQueue) || routerNow;
    this.departures.unshift({ s, why: why || 'None', waited: Math.max(0, routerNow - entered) / 1000, at: routerNow });
    this.departures.length = Math.min(this.departures.length, DEPARTURES);
    this.departed++;
  }

  completed() {
    this.complete = true;
    this.setState('');
  }

  // render draws the list in queue order, keeping the rows that stay:
  // rows that went are taken out first, so a departure at the head moves
  // no other row.
  render(routerNow) {
    const list = Array.from(this.byId.values()).sort((a, b) => a.QueuePosition - b.QueuePosition);
    const shown = list.slice(0, MAX_ROWS);
    const keep = new Map();
    for (const s of shown) keep.set(s.CallID, this.rowById.get(s.CallID) || this.row(s));
    for (const [id, r] of this.rowById) if (!keep.has(id)) r.tr.remove();
    shown.forEach((s, i) => {
      const r = keep.get(s.CallID);
      if (r.s !== s) this.fill(r, s);
      const at = this.rows.children[i];
      if (at !== r.tr) this.rows.insertBefore(r.tr, at || null);
    });
    this.rowById = keep;
    this.more.hidden = list.length <= MAX_ROWS;
    this.more.textContent = '+' + (list.length - MAX_ROWS) + ' more waiting';
    if (this.complete && list.length === 0) this.setState('nobody is waiting');
    else if (this.complete) this.setState('');
    if (this.drawn !== this.departed) this.renderDepartures();
    this.tick(routerNow);
  }

  row(s) {
    const tr = h('li', 'session');
    tr.dataset.callId = s.CallID;
    const cells = ['pos', 'media', 'wait', 'cust', 'dialed', 'agent'].map((c) => h('span', c));
    tr.append(...cells);
    if (s.fresh) {
      // highlighted for a moment: a class on and off, not an animation
      // repainted every frame
      tr.classList.add('new');
      setTimeout(() => tr.classList.remove('new'), NEW_MS);
    }
    const [pos, med, wait, cust, dialed, agent] = cells;
    return { tr, pos, med, wait, cust, dialed, agent, since: 0, s: null };
  }

  // fill shows a session on its row. A Modify that only moved it (the
  // common one: everybody behind a departure moves up) changes one cell.
  fill(r, s) {
    if (!s) return;
    const was = r.s;
    r.s = s;
    r.pos.textContent = String(s.QueuePosition);
    if (was && was.CallID === s.CallID && was.MediaType === s.MediaType && was.TimeEnteredQueue === s.TimeEnteredQueue &&
      was.CustomerInformation === s.CustomerInformation && was.DialedNumber === s.DialedNumber &&
      was.PreferredAgentID === s.PreferredAgentID && JSON.stringify(was.IVRInformation) === JSON.stringify(s.IVRInformation)) return;
    const masked = this.settings.mask;
    const [label, cls] = media(s.MediaType);
    r.med.replaceChildren(h('span', 'chip media-' + cls, label));
    r.since = Date.parse(s.TimeEnteredQueue) || 0;
    r.cust.textContent = (masked ? mask(s.CustomerInformation) : s.CustomerInformation) || '—';
    r.dialed.textContent = (masked ? mask(s.DialedNumber) : s.DialedNumber) || '';
    r.agent.textContent = s.PreferredAgentID ? 'agent ' + s.PreferredAgentID : '';
    const tip = ['CallID ' + s.CallID];
    if (!masked) for (const i of s.IVRInformation || []) tip.push(i.Label + ': ' + i.Data);
    if (r.since) tip.push('entered ' + new Date(r.since).toISOString());
    r.tr.title = tip.join('\n');
  }

  renderDepartures() {
    if (!this.settings) return;
    this.drawn = this.departed;
    this.left.replaceChildren(...this.departures.map((d) => {
      const li = h('li', 'departure cause-' + d.why);
      const [label, cls] = media(d.s.MediaType);
      const who = this.settings.mask ? mask(d.s.CustomerInformation) : d.s.CustomerInformation;
      li.append(h('span', 'at', clock(d.at)), h('span', 'chip media-' + cls, label), h('span', 'who', who || '—'),
        h('span', 'why', cause(d.why) + ' after ' + duration(d.waited)));
      return li;
    }));
  }

  // tick moves the waits on by the router's clock (ms now).
  tick(routerNow) {
    for (const r of this.rowById.values()) {
      const s = r.since ? Math.max(0, routerNow - r.since) / 1000 : null;
      const text = s === null ? '—' : duration(s);
      if (r.wait.textContent !== text) r.wait.textContent = text;
      const l = level(this.settings, 'wait', s);
      if (r.wait.dataset.level !== l) r.wait.dataset.level = l;
    }
  }
}
