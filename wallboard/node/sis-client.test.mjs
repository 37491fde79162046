// sis-client.js in Node against real gateways (node --test, run by the Go
// test TestNodeClient, which starts them). Environment:
//   SIS_URL       an open gateway's WebSocket URL (KeepAlive every 300 ms,
//                 heartbeat timeout 2 s)
//   SIS_AUTH_URL  a gateway that asks for a host administrator (admin/secret)
//   SIS_CONTROL   the test's control endpoint: POST /enqueue, /move, /remove,
//                 /putgroup, /removegroup, /linkdown, /linkup, /kick;
//                 GET /queue?group=G (the router's queue), /stats (the
//                 open gateway's sessions and subscriptions)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SisClient, Mirror, Fault, Closed } from '../static/sis-client.js';

const WebSocketClass = globalThis.WebSocket || (await import('ws')).WebSocket;
const { SIS_URL, SIS_AUTH_URL, SIS_CONTROL } = process.env;
assert.ok(SIS_URL && SIS_AUTH_URL && SIS_CONTROL, 'run by TestNodeClient (go test ./wallboard -run TestNodeClient)');

// ctl asks the test's router for something; it throws unless it was done.
async function ctl(op, args = {}) {
  const res = await fetch(SIS_CONTROL + '/' + op, { method: 'POST', body: JSON.stringify(args) });
  if (!res.ok) throw new Error(`${op} ${JSON.stringify(args)}: ${await res.text()}`);
}

async function get(what, group = '') {
  const res = await fetch(`${SIS_CONTROL}/${what}?group=${encodeURIComponent(group)}`);
  return res.json();
}

// until waits for cond, polling, and fails after ms saying what it waited for.
async function until(what, cond, ms = 15000) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    last = await cond();
    if (last === true) return;
    if (Date.now() > deadline) assert.fail(`waiting for ${what}: ${typeof last === 'string' ? last : 'not yet'}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

// held is a group as the client's mirror holds it, like GET /queue.
function held(c, group) {
  const v = c.view(group);
  return v.complete ? v.sessions.map((s) => `${s.CallID}@${s.QueuePosition}`) : null;
}

// mirrors waits until the client holds the router's queue of group.
async function mirrors(c, group, what) {
  await until(what, async () => {
    const want = (await get('queue', group)) || [];
    const got = held(c, group);
    return JSON.stringify(got) === JSON.stringify(want) || `holds ${JSON.stringify(got)}, the router ${JSON.stringify(want)}`;
  });
}

// client makes a SisClient closed when the test ends; events and states
// are kept in order.
function client(t, opts = {}) {
  const seen = { events: [], states: [], resets: [] };
  const c = new SisClient(Object.assign({
    url: SIS_URL, WebSocket: WebSocketClass, minBackoff: 20, maxBackoff: 200, retryInitialize: 100,
    onEvent: (e) => seen.events.push(e),
    onState: (s, d) => seen.states.push(d ? `${s}: ${d}` : s),
    onReset: (g) => seen.resets.push(g),
  }, opts));
  c.seen = seen;
  t.after(() => c.close());
  return c;
}

async function group(id, tenant = 'acme') {
  await ctl('putgroup', { Group: id, Tenant: tenant });
  return id;
}

test('mirrors a group in queue order: initial data, then Add, Modify and Remove', async (t) => {
  const g = await group('node-mirror');
  await ctl('enqueue', { Group: g, CallID: 'm1', Media: 'Voice', Customer: '+15555550001' });
  await ctl('enqueue', { Group: g, CallID: 'm2', Media: 'Chat', Customer: 'a@example.org' });
  const c = client(t, { positions: true });
  await c.connect();
  const res = await c.subscribe({ ServiceGroupID: g, Statistics: true });
  assert.deepEqual(res, { Succeeded: true, ServiceGroupID: g });
  await mirrors(c, g, 'the initial data');
  assert.equal(c.view(g).sessions[1].CustomerInformation, 'a@example.org');

  await ctl('enqueue', { Group: g, CallID: 'm3', Media: 'SMS' });
  await ctl('move', { Group: g, CallID: 'm3', Position: 1 });
  await ctl('remove', { Group: g, CallID: 'm1', Cause: 'SessionAllocatedToAgent' });
  await mirrors(c, g, 'the live changes');
  const removes = c.seen.events.filter((e) => e.event === 'SessionsUpdated').flatMap((e) => e.SessionUpdates).filter((u) => u.UpdateType === 'Remove');
  assert.deepEqual(removes.map((u) => [u.Session.CallID, u.RemoveCause]), [['m1', 'SessionAllocatedToAgent']]);
  await until('the statistics', () => (c.view(g).statistics || {}).Waiting === 2);
  assert.deepEqual(c.groups(), [g]);
  assert.deepEqual(c.seen.states, ['connecting', 'live']);
});

test('filters by media type, and sends statistics only when asked', async (t) => {
  const g = await group('node-filter');
  for (const [id, media] of [['f1', 'Voice'], ['f2', 'Chat'], ['f3', 'Voice'], ['f4', 'Chat']]) await ctl('enqueue', { Group: g, CallID: id, Media: media });
  const chat = client(t, { positions: true });
  await chat.connect();
  await chat.subscribe({ ServiceGroupID: g, MediaTypes: ['Chat'] });
  // positions stay those of the whole queue
  await until('the chat sessions', () => JSON.stringify(held(chat, g)) === JSON.stringify(['f2@2', 'f4@4']) || JSON.stringify(held(chat, g)));
  await ctl('remove', { Group: g, CallID: 'f1', Cause: 'Disconnect' });
  await until('the chat sessions moved up', () => JSON.stringify(held(chat, g)) === JSON.stringify(['f2@1', 'f4@3']) || JSON.stringify(held(chat, g)));

  const wall = client(t);
  await wall.connect();
  await wall.subscribe({ ServiceGroupID: g, Statistics: true, Sessions: false });
  await until('the figures', () => (wall.view(g).statistics || {}).Waiting === 3);
  await ctl('enqueue', { Group: g, CallID: 'f5', Media: 'Email' });
  await until('the new figures', () => (wall.view(g).statistics || {}).Waiting === 4);
  assert.equal(wall.seen.events.filter((e) => e.event === 'SessionsUpdated').length, 0, 'a statistics-only subscription got sessions');

  for (const [params, type] of [
    [{ ServiceGroupID: g, Statistics: false, Sessions: false }, 'InvalidRequestFault'],
    [{ ServiceGroupID: 'no-such-group' }, 'InvalidServiceGroupFault'],
    [{ ServiceGroupID: g, MediaTypes: ['Fax'] }, 'InvalidRequestFault'],
  ]) {
    const other = client(t);
    await other.connect();
    await assert.rejects(other.subscribe(params), (err) => err instanceof Fault && err.type === type, JSON.stringify(params));
  }
});

test('follows a tenant: groups added later, removed groups', async (t) => {
  const c = client(t, { positions: true });
  await c.connect();
  const res = await c.subscribe({ TenantID: 'globex', AllGroups: true });
  assert.ok(res.ServiceGroupIDs.includes('globex-chat'), JSON.stringify(res));
  const g = await group('node-globex-new', 'globex');
  await ctl('enqueue', { Group: g, CallID: 't1', Media: 'Chat' });
  await mirrors(c, g, 'the group added to the tenant');
  assert.ok(c.groups().includes(g));
  await ctl('removegroup', { Group: g });
  await until('ServiceGroupRemoved', () => c.seen.events.some((e) => e.event === 'ServiceGroupRemoved' && e.ServiceGroupID === g));
  assert.ok(!c.groups().includes(g));
  await c.unsubscribeTenant('globex');
});

test('resumes a group after the gateway closed the connection', async (t) => {
  const g = await group('node-resume');
  await ctl('enqueue', { Group: g, CallID: 'r1', Media: 'Voice' });
  const c = client(t, { positions: true });
  await c.connect();
  await c.subscribe({ ServiceGroupID: g });
  await mirrors(c, g, 'the initial data');
  await ctl('kick'); // the gateway takes the seat away: close 1001
  await ctl('enqueue', { Group: g, CallID: 'r2', Media: 'Chat' });
  await ctl('remove', { Group: g, CallID: 'r1', Cause: 'Overflow' });
  await until('a second session', () => c.stats.connects === 2);
  await mirrors(c, g, 'the changes made while it was away');
  assert.equal(c.stats.resumed, 1);
  assert.equal(c.seen.resets.length, 0, 'resumed, yet the mirror was dropped');
  assert.equal(c.lastClose.code, 1001);
  assert.ok(c.seen.states.some((s) => s.startsWith('reconnecting: retry in')), c.seen.states.join());
});

test('initializes again after RouterDisconnected, with the changes made meanwhile', async (t) => {
  const g = await group('node-router');
  await ctl('enqueue', { Group: g, CallID: 'd1', Media: 'Voice' });
  await ctl('enqueue', { Group: g, CallID: 'd2', Media: 'Voice' });
  const c = client(t, { positions: true });
  await c.connect();
  await c.subscribe({ ServiceGroupID: g });
  await mirrors(c, g, 'the initial data');
  await ctl('linkdown', { Reason: 'node test cut the link' });
  await until('the router reported down with its reason', () => c.seen.states.some((s) => s.startsWith('router: node test cut the link')) || c.seen.states.join());
  await ctl('remove', { Group: g, CallID: 'd1', Cause: 'Disconnect', Unheard: true });
  await ctl('linkup');
  await until('a new session', () => c.stats.connects === 2);
  await mirrors(c, g, 'the group as the router has it now');
  assert.equal(c.stats.routerDisconnects, 1);
});

test('answers KeepAlives: the session outlives the heartbeat timeout', async (t) => {
  const c = client(t);
  await c.connect();
  await until('ten KeepAlives (3 s, past the 2 s heartbeat timeout)', () => c.stats.keepAlives >= 10);
  assert.equal(c.stats.connects, 1);
  assert.equal(c.lastClose, null);
});

test('repairs a lost event from the KeepAlive Seqs', async (t) => {
  const g = await group('node-gap');
  let armed = false;
  let lost = 0;
  // a connection that loses the group's first live change once armed
  class Lossy extends WebSocketClass {
    set onmessage(fn) {
      super.onmessage = (ev) => {
        const m = JSON.parse(ev.data);
        if (armed && !lost && m.event === 'SessionsUpdated' && m.ServiceGroupID === g) return void lost++;
        fn(ev);
      };
    }
  }
  await ctl('enqueue', { Group: g, CallID: 'x1', Media: 'Voice' });
  const c = client(t, { positions: true, WebSocket: Lossy });
  await c.connect();
  await c.subscribe({ ServiceGroupID: g });
  await until('the initial data', () => held(c, g) !== null);
  await mirrors(c, g, 'the initial data whole');
  armed = true; // the next change is lost
  await ctl('enqueue', { Group: g, CallID: 'x2', Media: 'Voice' });
  await mirrors(c, g, 'the group repaired');
  assert.equal(lost, 1, 'no change was lost');
  assert.equal(c.stats.gaps, 1);
  assert.equal(c.stats.resumed, 1);
});

test('caps the events a second, merging the changes in between', async (t) => {
  const g = await group('node-cap');
  const c = client(t, { positions: true, maxEventsPerSecond: 1 });
  await c.connect();
  await c.subscribe({ ServiceGroupID: g });
  await until('the initial data', () => held(c, g) !== null);
  const before = c.seen.events.length;
  await ctl('enqueue', { Group: g, CallID: 'burst', Media: 'Chat', Count: 30 });
  await mirrors(c, g, 'the burst');
  const updates = c.seen.events.slice(before).filter((e) => e.event === 'SessionsUpdated');
  assert.ok(updates.length <= 3, `${updates.length} SessionsUpdated for 30 changes under a cap of 1 a second`);
});

test('asks for a login, and lists the directory with it', async (t) => {
  const asked = [];
  const answers = [{ LogonID: 'admin', Password: 'wrong' }, { LogonID: 'admin', Password: 'secret' }];
  const c = client(t, { url: SIS_AUTH_URL, login: async (why) => (asked.push(why), answers.shift()) });
  await c.connect();
  assert.deepEqual(asked, ['', 'Wrong LogonID or password.']);
  const dir = await c.directory();
  assert.deepEqual(dir.Tenants.map((x) => x.TenantID), ['acme', 'globex']);

  const refused = client(t, { url: SIS_AUTH_URL });
  await assert.rejects(refused.connect(), Closed);
  assert.ok(refused.seen.states.at(-1).startsWith('refused'), refused.seen.states.join());
  await assert.rejects(refused.directory(), (err) => err instanceof Fault && err.type === 'InvalidUserFault');
});

test('close fails what is pending, and the gateway lets the session go', async (t) => {
  const c = client(t);
  await c.connect();
  await until('the gateway holding the session', async () => (await get('stats')).Sessions >= 1);
  c.close();
  await assert.rejects(c.request('Heartbeat'), Closed);
  await until('no session left on the gateway', async () => (await get('stats')).Sessions === 0 || JSON.stringify(await get('stats')));
});

test('Mirror refuses updates that do not fit', () => {
  const m = new Mirror(true);
  const s = (id, pos) => ({ CallID: id, QueuePosition: pos });
  m.apply({ event: 'SessionsUpdated', ServiceGroupID: 'g', Seq: 1, SessionUpdates: [{ UpdateType: 'Add', Session: s('a', 1) }, { UpdateType: 'Add', Session: s('b', 2) }] });
  m.apply({ event: 'SessionsUpdated', ServiceGroupID: 'g', Seq: 2, SessionUpdates: [{ UpdateType: 'Modify', Session: s('b', 1) }, { UpdateType: 'Modify', Session: s('a', 2) }] });
  assert.deepEqual(m.groups.get('g').map((x) => x.CallID), ['b', 'a']);
  assert.throws(() => m.apply({ event: 'SessionsUpdated', ServiceGroupID: 'g', Seq: 3, SessionUpdates: [{ UpdateType: 'Add', Session: s('a', 3) }] }), /already there/);
  assert.throws(() => m.apply({ event: 'SessionsUpdated', ServiceGroupID: 'g', Seq: 3, SessionUpdates: [{ UpdateType: 'Remove', Session: s('z', 1) }] }), /not there/);
  m.apply({ event: 'InitialDataComplete', ServiceGroupID: 'h', Seq: 9 });
  assert.equal(m.seq.get('h'), 9);
  assert.ok(m.complete.has('h'));
});
