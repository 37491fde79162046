// The wallboard's settings, read from and written to the page's URL, so a
// wall screen opens straight onto its view:
//
//   /?tenants=acme&groups=acme-sales,acme-support&theme=dark&rotate=20
//    &wait=60,180&waiting=5,10&sl=80,60&est=60,180&mask=off
//
// Every setting is optional; docs/wallboard.md lists them.
'use strict';

// DEFAULTS are the settings of a URL without parameters.
export const DEFAULTS = Object.freeze({
  tenants: [], // TenantIDs or tenant names; empty: every tenant
  groups: [], // ServiceGroupIDs or group names, in the order to show; empty: every group
  theme: 'auto', // auto (the system's), light or dark
  mask: true, // customer numbers and addresses masked
  rotate: 15, // seconds a page shows when the tiles do not fit; 0: scroll instead
  wait: [60, 180], // longest wait, seconds: amber from, red from
  waiting: [5, 10], // sessions waiting: amber from, red from
  sl: [80, 60], // service level, percent: amber below, red below
  est: [60, 180], // estimated wait, seconds: amber from, red from
});

// THRESHOLDS describes each colour threshold: its unit and whether a lower
// value is the worse one.
export const THRESHOLDS = Object.freeze({
  wait: { label: 'longest wait', unit: 's', lowerIsWorse: false },
  waiting: { label: 'waiting', unit: 'sessions', lowerIsWorse: false },
  sl: { label: 'service level', unit: '%', lowerIsWorse: true },
  est: { label: 'estimated wait', unit: 's', lowerIsWorse: false },
});

const THEMES = ['auto', 'light', 'dark'];
const OFF = ['off', '0', 'false', 'no'];
const ON = ['on', '1', 'true', 'yes'];

function list(v) {
  return v.split(',').map((s) => s.trim()).filter((s) => s !== '');
}

// pair reads "a,b" as two numbers ordered as the threshold needs: warn
// before alert (for a lower-is-worse one, warn above alert).
function pair(name, v) {
  const parts = list(v).map(Number);
  const t = THRESHOLDS[name];
  if (parts.length !== 2 || parts.some((n) => !Number.isFinite(n) || n < 0)) {
    return [null, `${name}: two numbers (${t.unit}) are needed, amber then red, like ${name}=${DEFAULTS[name].join(',')}`];
  }
  const [warn, alert] = parts;
  if (t.lowerIsWorse ? warn < alert : warn > alert) {
    return [null, `${name}: amber (${warn}) must come ${t.lowerIsWorse ? 'above' : 'below'} red (${alert})`];
  }
  return [[warn, alert], ''];
}

const READERS = {
  tenants: (v) => [list(v), ''],
  groups: (v) => [list(v), ''],
  theme: (v) => (THEMES.includes(v) ? [v, ''] : [null, `theme: one of ${THEMES.join(', ')}`]),
  mask: (v) => (OFF.includes(v) ? [false, ''] : ON.includes(v) ? [true, ''] : [null, 'mask: on or off']),
  rotate: (v) => {
    const n = Number(v);
    return Number.isFinite(n) && n >= 0 && v !== '' ? [n, ''] : [null, 'rotate: seconds per page (0: scroll instead)'];
  },
  wait: (v) => pair('wait', v),
  waiting: (v) => pair('waiting', v),
  sl: (v) => pair('sl', v),
  est: (v) => pair('est', v),
};

// parse reads the settings from a query string. A setting it cannot read
// keeps its default and is named in problems, which the page shows.
export function parse(search) {
  const settings = Object.assign({}, DEFAULTS);
  const problems = [];
  for (const [key, value] of new URLSearchParams(search)) {
    const read = READERS[key];
    if (!read) {
      problems.push(`unknown setting "${key}"`);
      continue;
    }
    const [v, problem] = read(value.trim());
    if (problem) problems.push(problem);
    else settings[key] = v;
  }
  return { settings, problems };
}

function same(a, b) {
  return JSON.stringify(a) === JSON.stringify(b);
}

// query writes the settings as a query string ("?..."), naming only those
// that differ from the defaults; "" when none does.
export function query(settings) {
  const q = new URLSearchParams();
  for (const key of Object.keys(DEFAULTS)) {
    const v = settings[key];
    if (same(v, DEFAULTS[key])) continue;
    if (key === 'mask') q.set(key, v ? 'on' : 'off');
    else q.set(key, Array.isArray(v) ? v.join(',') : String(v));
  }
  const s = q.toString().replace(/%2C/g, ',');
  return s ? '?' + s : '';
}

// level grades a value against a threshold of the settings: 'alert',
// 'warn' or ''. A null value (no figure) is ''.
export function level(settings, name, value) {
  if (value === null || value === undefined) return '';
  const [warn, alert] = settings[name];
  if (THRESHOLDS[name].lowerIsWorse) return value < alert ? 'alert' : value < warn ? 'warn' : '';
  return value >= alert ? 'alert' : value >= warn ? 'warn' : '';
}

// worst returns the worse of levels.
export function worst(...levels) {
  return levels.includes('alert') ? 'alert' : levels.includes('warn') ? 'warn' : '';
}
