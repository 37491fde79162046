// The wall of tiles: one tile per service group, fed by its
// QueueStatistics, laid out to fill the screen; when the tiles would be too
// small to read, they are split into pages that rotate.
'use strict';

import { duration, media, cause, percent, windowText, CAUSES } from './format.js';
import { level, worst } from './settings.js';

const MIN_W = 160; // px: a tile is never narrower...
const MIN_H = 90; // ...nor lower; past that the board pages
const GAP = 8; // px between tiles (as in style.css)
const SHAPE = 2; // the width:height a tile reads best at

function h(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

// figure is a label under a value, the tile's unit of information; a
// small tile shows the short label beside the value instead.
function figure(className, label, short) {
  const box = h('div', 'fig ' + className);
  const value = h('span', 'fig-value', '—');
  const long = h('span', 'fig-label', label);
  box.append(value, long);
  if (short) box.append(h('span', 'fig-short', short));
  return { box, value, label: long };
}

// grid finds the columns and rows that make n tiles largest in w×h.
export function grid(n, w, hgt) {
  let best = { cols: 1, rows: Math.max(1, n), size: -1 };
  for (let cols = 1; cols <= Math.max(1, n); cols++) {
    const rows = Math.ceil(n / cols);
    const tw = (w - GAP * (cols - 1)) / cols;
    const th = (hgt - GAP * (rows - 1)) / rows;
    const size = Math.min(th, tw / SHAPE);
    if (size > best.size) best = { cols, rows, size, tw, th };
  }
  return best;
}

// paging decides how many tiles a page holds: all of them when they fit at
// a readable size, else as many as fit at the minimum.
export function paging(n, w, hgt) {
  const g = grid(n, w, hgt);
  if (n === 0 || (g.tw >= MIN_W && g.th >= MIN_H)) return { perPage: Math.max(1, n), pages: 1 };
  const cols = Math.max(1, Math.floor((w + GAP) / (MIN_W + GAP)));
  const rows = Math.max(1, Math.floor((hgt + GAP) / (MIN_H + GAP)));
  const perPage = cols * rows;
  return { perPage, pages: Math.ceil(n / perPage), cols, rows };
}

export class Board {
  // root: the grid element; pager: {box, text, bar}; open(g): a tile was
  // chosen; now(): the router's time in ms.
  constructor(root, pager, open, now) {
    this.now = now;
    this.root = root;
    this.pager = pager;
    this.open = open;
    this.groups = []; // in the order shown
    this.settings = null;
    this.page = 0;
    this.plan = { perPage: 1, pages: 1 };
    this.rotation = 0;
    new ResizeObserver(() => this.fit()).observe(root);
  }

  setSettings(s) {
    this.settings = s;
    for (const g of this.groups) this.render(g);
    this.fit();
  }

  // show lays out these groups, in this order, reusing their tiles.
  show(groups) {
    this.groups = groups;
    for (const g of groups) if (!g.tile) g.tile = this.build(g);
    this.root.replaceChildren(...groups.map((g) => g.tile.box));
    for (const g of groups) this.render(g);
    this.fit();
  }

  build(g) {
    const box = h('article', 'tile loading');
    box.dataset.group = g.id;
    box.tabIndex = 0;
    box.setAttribute('role', 'button');
    const body = h('div', 'tile-body');
    const head = h('header', 'tile-head');
    const name = h('h3', 'tile-name');
    const tenant = h('span', 'tile-tenant');
    head.append(name, tenant);
    const waiting = figure('waiting', 'waiting');
    const longest = figure('longest', 'longest wait');
    const big = h('div', 'tile-big');
    big.append(waiting.box, longest.box);
    const mediaList = h('ul', 'tile-media');
    const sl = figure('sl', 'service level', 'SL');
    const est = figure('est', 'est. wait', 'est.');
    const abandoned = figure('abandoned', 'abandoned', 'ab.');
    const answered = figure('answered', 'answered', 'ans.');
    const figs = h('div', 'tile-figures');
    figs.append(sl.box, est.box, abandoned.box, answered.box);
    const foot = h('p', 'tile-foot');
    const note = h('p', 'tile-note');
    body.append(head, big, mediaList, figs, foot, note);
    box.append(body);
    box.addEventListener('click', () => this.open(g));
    box.addEventListener('keydown', (ev) => (ev.key === 'Enter' || ev.key === ' ') && (ev.preventDefault(), this.open(g)));
    return { box, name, tenant, waiting, longest, mediaList, sl, est, abandoned, answered, foot, note, oldest: null, levels: {} };
  }

  // render shows a group's latest statistics on its tile.
  render(g) {
    const t = g.tile;
    if (!t || !this.settings) return;
    const s = g.stats;
    t.name.textContent = g.name;
    t.tenant.textContent = g.tenantName;
    t.box.title = g.tenantName + ' / ' + g.name + ' (' + g.id + '): click for its sessions';
    t.box.classList.toggle('loading', !s && !g.unavailable);
    t.box.classList.toggle('unavailable', !!g.unavailable);
    t.note.textContent = g.unavailable ? 'unavailable: ' + g.unavailable : '';
    t.note.hidden = !g.unavailable;
    if (!s) return this.blank(t);
    t.waiting.value.textContent = String(s.Waiting);
    t.oldest = s.OldestEnteredQueue ? Date.parse(s.OldestEnteredQueue) : null;
    this.renderMedia(t, s.WaitingByMedia || {});
    this.renderFigures(t, s);
    t.box.classList.toggle('idle', s.Waiting === 0);
    t.levels.waiting = level(this.settings, 'waiting', s.Waiting);
    t.waiting.box.dataset.level = t.levels.waiting;
    this.tickTile(g, this.now());
  }

  blank(t) {
    for (const f of [t.waiting, t.longest, t.sl, t.est, t.abandoned, t.answered]) {
      f.value.textContent = '—';
      f.box.dataset.level = '';
    }
    t.mediaList.replaceChildren();
    t.mediaKey = '';
    t.foot.textContent = '';
    t.oldest = null;
    t.levels = {};
    t.box.dataset.level = '';
    t.box.classList.remove('idle');
  }

  renderMedia(t, byMedia) {
    const items = Object.entries(byMedia).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
    const key = items.join(';');
    if (t.mediaKey === key) return;
    t.mediaKey = key;
    t.mediaList.replaceChildren(...items.map(([m, n]) => {
      const [label, cls] = media(m);
      const li = h('li', 'chip media-' + cls);
      li.append(h('b', '', String(n)), document.createTextNode(' ' + label));
      return li;
    }));
  }

  renderFigures(t, s) {
    const removed = s.Removed || {};
    t.sl.label.textContent = 'SL ≤ ' + s.ServiceLevelThreshold + ' s';
    t.sl.value.textContent = s.ServiceLevel === null || s.ServiceLevel === undefined ? '—' : percent(s.ServiceLevel);
    t.levels.sl = level(this.settings, 'sl', s.ServiceLevel === null ? null : s.ServiceLevel * 100);
    t.sl.box.dataset.level = t.levels.sl;
    t.est.value.textContent = s.EstimatedWait === null || s.EstimatedWait === undefined ? '—' : duration(s.EstimatedWait);
    t.est.box.title = s.EstimatedWait === null ? 'too little history for an estimate yet' : '';
    t.levels.est = level(this.settings, 'est', s.EstimatedWait);
    t.est.box.dataset.level = t.levels.est;
    t.abandoned.value.textContent = String(removed.Disconnect || 0);
    t.answered.value.textContent = String(removed.SessionAllocatedToAgent || 0);
    const parts = ['last ' + windowText(s.Window), s.Entered + ' entered'];
    if (s.AverageWaitAllocated !== null && s.AverageWaitAllocated !== undefined) parts.push('answered in ' + duration(s.AverageWaitAllocated) + ' on average');
    for (const c of Object.keys(CAUSES)) {
      if (c !== 'SessionAllocatedToAgent' && c !== 'Disconnect' && removed[c]) parts.push(removed[c] + ' ' + cause(c));
    }
    t.foot.textContent = parts.join(' · ');
  }

  grade(t) {
    const l = t.levels;
    const w = worst(l.waiting, l.longest, l.sl, l.est);
    if (t.box.dataset.level !== w) t.box.dataset.level = w;
  }

  // tick moves the longest waits on by the router's clock.
  tick() {
    const now = this.now();
    for (const g of this.groups) if (g.tile && g.stats) this.tickTile(g, now);
  }

  tickTile(g, routerNow) {
    const t = g.tile;
    const s = t.oldest === null ? null : Math.max(0, routerNow - t.oldest) / 1000;
    const text = s === null ? '—' : duration(s);
    if (t.longest.value.textContent !== text) t.longest.value.textContent = text;
    const l = level(this.settings, 'wait', s);
    t.levels.longest = l;
    if (t.longest.box.dataset.level !== l) t.longest.box.dataset.level = l;
    this.grade(t);
  }

  // fit sizes the grid to the screen, paging when the tiles do not fit.
  fit() {
    const w = this.root.clientWidth;
    const hgt = this.root.clientHeight;
    if (!w || !hgt || !this.settings) return;
    const n = this.groups.length;
    const scroll = this.settings.rotate === 0;
    this.plan = scroll ? { perPage: Math.max(1, n), pages: 1 } : paging(n, w, hgt);
    const onPage = Math.min(n, this.plan.perPage);
    const g = this.plan.pages > 1 ? { cols: this.plan.cols, rows: this.plan.rows } : grid(onPage, w, hgt);
    const small = scroll && paging(n, w, hgt).pages > 1;
    this.root.classList.toggle('scroll', small);
    this.root.style.gridTemplateColumns = small ? `repeat(auto-fill, minmax(${MIN_W * 1.4}px, 1fr))` : `repeat(${g.cols}, minmax(0, 1fr))`;
    this.root.style.gridTemplateRows = small ? '' : `repeat(${g.rows}, minmax(0, 1fr))`;
    this.root.style.gridAutoRows = small ? `${MIN_H * 1.6}px` : '';
    if (this.page >= this.plan.pages) this.page = 0;
    this.showPage();
    this.rotate();
  }

  showPage() {
    const { perPage, pages } = this.plan;
    this.groups.forEach((g, i) => {
      const hidden = Math.floor(i / perPage) !== this.page;
      if (g.tile.box.hidden !== hidden) g.tile.box.hidden = hidden;
    });
    this.pager.box.hidden = pages < 2;
    this.pager.text.textContent = 'page ' + (this.page + 1) + ' of ' + pages;
    this.root.dataset.page = String(this.page + 1);
    this.root.dataset.pages = String(pages);
  }

  // rotate (re)starts the page rotation when there are pages to turn.
  rotate() {
    const every = this.settings.rotate * 1000;
    const want = this.plan.pages > 1 && every > 0 ? every : 0;
    if (this.rotation && this.rotation.every === want) return;
    if (this.rotation) clearInterval(this.rotation.timer);
    this.rotation = null;
    this.pager.bar.style.animationDuration = want ? want + 'ms' : '';
    if (!want) return;
    const timer = setInterval(() => this.turn(), want);
    this.rotation = { every: want, timer };
  }

  turn() {
    this.page = (this.page + 1) % this.plan.pages;
    this.showPage();
    // restart the progress bar's animation
    this.pager.bar.classList.remove('run');
    void this.pager.bar.offsetWidth;
    this.pager.bar.classList.add('run');
  }

  // totals sums the groups' figures for the header.
  totals() {
    let waiting = 0;
    let abandoned = 0;
    let answered = 0;
    for (const g of this.groups) {
      if (!g.stats) continue;
      waiting += g.stats.Waiting;
      abandoned += (g.stats.Removed || {}).Disconnect || 0;
      answered += (g.stats.Removed || {}).SessionAllocatedToAgent || 0;
    }
    return { groups: this.groups.length, waiting, abandoned, answered };
  }
}
