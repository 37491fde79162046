// Formatting for the wallboard: durations, clocks, the words a supervisor
// reads instead of the protocol's enum names, and the masking of customer
// data on a screen that faces a room.
'use strict';

// MEDIA maps a SessionMediaType member to its label and CSS class suffix.
export const MEDIA = {
  Voice: ['Voice', 'voice'],
  Chat: ['Chat', 'chat'],
  Callback: ['Callback', 'callback'],
  WebCallBack: ['Web callback', 'webcallback'],
  Email: ['Email', 'email'],
  Campaign: ['Campaign', 'campaign'],
  SMS: ['SMS', 'sms'],
  OpenMedia: ['Open media', 'openmedia'],
  None: ['Other', 'none'],
};

// CAUSES maps a SessionRemoveCause member to plain words, in the order a
// wallboard lists them.
export const CAUSES = {
  SessionAllocatedToAgent: 'answered',
  Disconnect: 'abandoned',
  Overflow: 'overflowed',
  CallTransferred: 'transferred',
  ServiceGroupClosed: 'group closed',
  SessionFailed: 'failed',
  CampaignNotRunning: 'campaign stopped',
  None: 'left',
};

// media returns [label, class] of a media type, whatever its name.
export function media(name) {
  return MEDIA[name] || [String(name || 'Other'), 'none'];
}

// cause returns the plain words of a remove cause.
export function cause(name) {
  return CAUSES[name] || String(name || 'left').toLowerCase();
}

function pad(n) {
  return n < 10 ? '0' + n : String(n);
}

// duration formats seconds as "mm:ss", or "h:mm:ss" past an hour.
export function duration(s) {
  s = Math.max(0, Math.floor(s));
  const hh = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = s % 60;
  return hh > 0 ? hh + ':' + pad(mm) + ':' + pad(ss) : pad(mm) + ':' + pad(ss);
}

// clock formats a Date (or milliseconds) as local "hh:mm:ss".
export function clock(d) {
  d = d instanceof Date ? d : new Date(d);
  return pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds());
}

// percent formats a fraction 0..1 as a whole percentage.
export function percent(f) {
  return Math.round(f * 100) + '%';
}

// windowText formats a statistics window of seconds ("15 min", "1 h", "90 s").
export function windowText(s) {
  if (s >= 3600 && s % 3600 === 0) return s / 3600 + ' h';
  if (s >= 60 && s % 60 === 0) return s / 60 + ' min';
  return s + ' s';
}

const DOTS = '\u2022\u2022\u2022';

// mask hides most of a customer number or address, keeping enough to tell
// two apart: the last four digits of a number ("+•••0001"), the first
// letter and the domain of an address ("j•••@example.org"), the first
// character of anything else. Empty stays empty.
export function mask(s) {
  s = String(s || '');
  if (s === '') return '';
  const at = s.lastIndexOf('@');
  if (at > 0) return s[0] + DOTS + s.slice(at);
  const digits = s.replace(/\D/g, '');
  if (digits.length >= 5) return (s.trim()[0] === '+' ? '+' : '') + DOTS + digits.slice(-4);
  return s[0] + DOTS;
}
