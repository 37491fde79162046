// Follows one SIS Bridge service group straight from JetStream, in Node:
// the group's snapshot, then its events after it (an ordered consumer),
// printing the queue after every change. The same as the Go example
// beside it (../main.go); the bus's messages are described in
// docs/bus.md.
//
//   npm ci
//   node consumer.mjs --nats nats://127.0.0.1:4222 --tenant acme --group acme-sales
//
// With `sisbridge run`, connect as a role that may read snapshots:
// --user gateway, the password in $SIS_NATS_PASSWORD (from
// sisbridge-data/nats-credentials.json).
import { parseArgs } from 'node:util';
import { connect } from '@nats-io/transport-node';
import { jetstream, DeliverPolicy } from '@nats-io/jetstream';
import { Objm } from '@nats-io/obj';
import { decode } from '@msgpack/msgpack';

const MEDIA = ['None', 'Chat', 'Callback', 'WebCallBack', 'Voice', 'Email', 'Campaign', 'SMS', 'OpenMedia'];
const ENQUEUE = 1;
const MOVE = 2;
const REMOVE = 3;

const { values: opts } = parseArgs({
  options: {
    nats: { type: 'string', default: 'nats://127.0.0.1:4222' },
    tenant: { type: 'string' },
    group: { type: 'string' },
    user: { type: 'string' },
    changes: { type: 'string', default: '0' }, // stop after this many changes (0: run until interrupted)
  },
});
const id = /^[A-Za-z0-9_-]{1,64}$/;
if (!id.test(opts.tenant || '') || !id.test(opts.group || '')) {
  console.error('consumer: give --tenant and --group (1 to 64 characters from [A-Za-z0-9_-])');
  process.exit(2);
}
const maxChanges = Number(opts.changes);

// session turns a session of the bus into what the queue holds.
function session(s, callID) {
  return { callID: callID ?? s.c, media: MEDIA[s.m] ?? String(s.m), entered: s.te, customer: s.ci ?? '' };
}

// changes lists a message's changes with their sequence numbers: one, or
// a batch ("b", change i numbered q + i).
function changes(ev) {
  if (Array.isArray(ev.b)) return ev.b.map((c, i) => ({ ...c, q: ev.q + i }));
  return [ev];
}

class Follower {
  constructor(tenant, group) {
    this.tenant = tenant;
    this.group = group;
    this.queue = [];
    this.seq = 0;
    this.streamSeq = 0;
  }

  // load reads the group's snapshot, if it has one.
  async load(nc) {
    const store = await new Objm(nc).open('SIS_SNAPSHOTS');
    const got = await store.get(`${this.tenant}.${this.group}`);
    if (!got) return;
    const chunks = [];
    for await (const c of got.data) chunks.push(c);
    const snap = decode(Buffer.concat(chunks));
    if (snap.v !== 1) throw new Error(`snapshot version ${snap.v}: this reader knows 1`);
    this.queue = snap.s.map((s) => session(s));
    this.seq = snap.q;
    this.streamSeq = snap.ss;
  }

  // apply applies one change; false for one the state has already.
  apply(c) {
    if (c.q <= this.seq) return false;
    if (c.q !== this.seq + 1) throw new Error(`a gap: after ${this.seq} comes ${c.q}`);
    const at = this.queue.findIndex((s) => s.callID === c.c);
    switch (c.op) {
      case ENQUEUE:
        this.queue.splice(c.p - 1, 0, session(c.s, c.c));
        break;
      case MOVE: {
        const [s] = this.queue.splice(at, 1);
        this.queue.splice(c.p - 1, 0, s);
        break;
      }
      case REMOVE:
        this.queue.splice(at, 1);
        break;
      default:
        throw new Error(`unknown op ${c.op}`);
    }
    this.seq = c.q;
    return true;
  }

  print(why) {
    const lines = [`${this.group} at Seq ${this.seq} (${why}): ${this.queue.length} waiting`];
    this.queue.forEach((s, i) => {
      const entered = s.entered instanceof Date ? s.entered.toISOString() : '';
      lines.push(`  ${String(i + 1).padStart(3)}  ${s.callID.padEnd(24)} ${s.media.padEnd(11)} ${entered}`);
    });
    console.log(lines.join('\n'));
  }
}

const nc = await connect({ servers: opts.nats, user: opts.user, pass: process.env.SIS_NATS_PASSWORD, name: 'natsconsumer-node' });
const f = new Follower(opts.tenant, opts.group);
await f.load(nc);
f.print('loaded');
const consumer = await jetstream(nc).consumers.get('SIS_EVENTS', {
  filter_subjects: [`sis.v1.evt.${opts.tenant}.${opts.group}`],
  deliver_policy: DeliverPolicy.StartSequence,
  opt_start_seq: f.streamSeq + 1,
});
const messages = await consumer.consume();
let applied = 0;
process.on('SIGINT', () => messages.stop());
for await (const m of messages) {
  let ev;
  try {
    ev = decode(m.data);
  } catch {
    continue; // no event: nothing of the queue
  }
  if (ev.v !== 1) throw new Error(`event version ${ev.v}: this reader knows 1`);
  const n = changes(ev).filter((c) => f.apply(c)).length;
  if (n > 0) {
    applied += n;
    f.print(`${n} change(s)`);
  }
  if (maxChanges > 0 && applied >= maxChanges) break;
}
await nc.close();
