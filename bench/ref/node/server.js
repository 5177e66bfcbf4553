// The Node.js + zeromq.js (v6) reference server of the benchmark, serving
// the contract of bench/handlers.js on one ROUTER socket:
//   a request holding "sleep" -> "Reply to <identity>" after a 10 s setTimeout
//   a request holding "reply" -> "Reply to <identity>" at once
//   anything else             -> {"error":"unknown command"}
// The last frame is the request; the frames before it (DEALER: identity;
// REQ: identity, empty delimiter) are sent back in front of the reply.
//
//   npm install && node server.js PORT|ENDPOINT   (a bare port: tcp://127.0.0.1:PORT)
'use strict';

const zmq = require('zeromq');

const arg = process.argv[2] || '5555';
const endpoint = /^\d+$/.test(arg) ? `tcp://127.0.0.1:${arg}` : arg;
const SLEEP_MS = 10000;
const PREFIX = Buffer.from('Reply to ');
const UNKNOWN = Buffer.from('{"error":"unknown command"}');
const SLEEP = Buffer.from('sleep');
const REPLY = Buffer.from('reply');

// zeromq.js allows one send in progress per socket, and replies come both
// from the receive loop and from timers: every send goes through one queue.
class Writer {
  constructor(sock) {
    this.sock = sock;
    this.queue = [];
    this.head = 0;
    this.busy = false;
    this.drained = null; // resolves when the queue empties
  }

  send(frames) {
    this.queue.push(frames);
    if (!this.busy) this.pump();
  }

  get length() {
    return this.queue.length - this.head;
  }

  // Resolves once the queue is empty (backpressure for the receive loop).
  drain() {
    if (!this.busy) return Promise.resolve();
    if (!this.drained) {
      this.drained = new Promise((resolve) => { this.resolveDrained = resolve; });
    }
    return this.drained;
  }

  async pump() {
    this.busy = true;
    while (this.head < this.queue.length) {
      const frames = this.queue[this.head];
      this.queue[this.head++] = undefined;
      try {
        await this.sock.send(frames);
      } catch (err) {
        if (this.sock.closed) break;
        console.error('send:', err.message); // e.g. a peer gone: drop its reply
      }
    }
    this.queue = [];
    this.head = 0;
    this.busy = false;
    if (this.drained) {
      const resolve = this.resolveDrained;
      this.drained = null;
      resolve();
    }
  }
}

async function main() {
  const sock = new zmq.Router({ linger: 0, sendHighWaterMark: 0 });
  await sock.bind(endpoint);
  console.error(`node: listening on ${endpoint}`);
  const writer = new Writer(sock);

  const shutdown = () => {
    sock.close();
    process.exit(0);
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);

  for await (const [id, ...rest] of sock) {
    if (rest.length === 0) continue; // no request frame after the identity
    const req = rest[rest.length - 1];
    const envelope = [id, ...rest.slice(0, -1)];
    if (req.includes(SLEEP)) {
      setTimeout(() => writer.send([...envelope, Buffer.concat([PREFIX, id])]), SLEEP_MS);
    } else if (req.includes(REPLY)) {
      writer.send([...envelope, Buffer.concat([PREFIX, id])]);
    } else {
      writer.send([...envelope, UNKNOWN]);
    }
    if (writer.length > 1000) await writer.drain();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
