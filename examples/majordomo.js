// A Majordomo broker (ZeroMQ RFC 7, MDP/0.1) in handlers.js: the guide's
// mdclient and mdworker talk to it unchanged. Every handler is a plain
// function: the broker only relays, so nothing here ever waits.
//
// Frames (the leading empty delimiter of a REQ-style peer is the server's
// business: it is not in message.frames, and every reply gets it back):
//   client -> broker   "MDPC01" <service> <body...>
//   broker -> client   "MDPC01" <service> <body...>
//   worker -> broker   "MDPW01" 0x01 <service>                    READY
//   broker -> worker   "MDPW01" 0x02 <client> "" <body...>        REQUEST
//   worker -> broker   "MDPW01" 0x03 <client> "" <body...>        REPLY
//   both ways          "MDPW01" 0x04                              HEARTBEAT
//   both ways          "MDPW01" 0x05                              DISCONNECT
//
// Run it:  moebius-js serve examples/majordomo.js
// (Its state lives in JavaScript globals, so it needs workers: 1.)
//
// Kept short: a request waits in its service's queue until a worker is
// idle, and a worker that leaves with a request in hand loses it
// (Majordomo's clients retry). Workers are forgotten after three missed
// heartbeats.

const { server, sleep, text, log } = require('moebius');

const MDPC = 'MDPC01';
const MDPW = 'MDPW01';
const READY = 1, REQUEST = 2, REPLY = 3, HEARTBEAT = 4, DISCONNECT = 5;
const HEARTBEAT_MS = 2500;
const LIVENESS = 3;

/** @typedef {import('moebius').Client} Client */
/** @typedef {{ idle: Queue<string>, waiting: Queue<[string, Uint8Array[]]> }} Service */

/** @type {Map<string, Service>} */
const services = new Map(); // name -> { idle: Queue of worker ids, waiting: Queue of [client id, body frames] }
/** @type {Map<string, { service: string, seen: number }>} */
const workers = new Map();  // worker id -> { service, seen: ms }

// Queue is a FIFO whose shift is O(1) (Array.prototype.shift moves every
// element, which a broker with 100,000 requests waiting cannot afford).
/** @template T */
class Queue {
  constructor() {
    /** @type {(T | undefined)[]} */
    this.items = [];
    this.head = 0;
  }
  get length() { return this.items.length - this.head; }
  /** @param {T} x */
  push(x) { this.items.push(x); }
  /** @returns {T} the oldest item (call it only when length > 0) */
  shift() {
    const x = /** @type {T} */ (this.items[this.head]);
    this.items[this.head++] = undefined;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return x;
  }
}

/**
 * @param {string} name
 * @returns {Service}
 */
function service(name) {
  let svc = services.get(name);
  if (!svc) services.set(name, (svc = { idle: new Queue(), waiting: new Queue() }));
  return svc;
}

// dispatch hands waiting requests to idle workers that are still there.
/** @param {Service} svc */
function dispatch(svc) {
  while (svc.idle.length > 0 && svc.waiting.length > 0) {
    const worker = svc.idle.shift();
    if (!workers.has(worker)) continue; // it left
    const [client, body] = svc.waiting.shift();
    server.send(worker, MDPW, new Uint8Array([REQUEST]), client, '', ...body);
  }
}

/**
 * @param {Client} client
 * @param {Uint8Array[]} frames "MDPC01" <service> <body...>
 */
function fromClient(client, frames) {
  const name = text(frames[1]);
  const svc = service(name);
  svc.waiting.push([client.id, frames.slice(2)]);
  dispatch(svc);
}

/**
 * @param {Client} worker
 * @param {Uint8Array[]} frames "MDPW01" <command> ...
 */
function fromWorker(worker, frames) {
  const command = frames[1][0];
  const known = workers.get(worker.id);
  if (known) known.seen = Date.now();
  switch (command) {
    case READY: {
      const name = text(frames[2]);
      workers.set(worker.id, { service: name, seen: Date.now() });
      service(name).idle.push(worker.id);
      dispatch(service(name));
      return;
    }
    case REPLY: {
      if (!known) return;
      const client = text(frames[2]);
      try {
        server.send(client, MDPC, known.service, ...frames.slice(4));
      } catch (e) {
        log.debug('client left before its reply', { client });
      }
      service(known.service).idle.push(worker.id);
      dispatch(service(known.service));
      return;
    }
    case DISCONNECT:
      workers.delete(worker.id);
      return;
    // HEARTBEAT: seen is refreshed above.
  }
}

module.exports = /** @satisfies {import('moebius').Handlers} */ ({
  route(message) {
    const protocol = message.text;
    if (protocol === MDPC && message.frames.length >= 2) return { handler: fromClient, data: message.frames };
    if (protocol === MDPW && message.frames.length >= 2) return { handler: fromWorker, data: message.frames };
    return null; // anything else gets a no_route error reply
  },

  *background(srv) {
    for (;;) {
      yield sleep(HEARTBEAT_MS);
      const now = Date.now();
      for (const [id, w] of workers) {
        const c = srv.client(id);
        if (!c || now - w.seen > LIVENESS * HEARTBEAT_MS) {
          workers.delete(id);
          continue;
        }
        c.send(MDPW, new Uint8Array([HEARTBEAT]));
      }
    }
  },
});
