// A service broker in the spirit of ZeroMQ's Majordomo pattern, written in
// handlers.js: workers offer a named service, clients ask for it, and the
// broker relays each request to an idle worker and the reply back, by
// client id. It uses a custom route over multi-frame messages, relaying
// with server.send(id, ...), and heartbeats from background().
//
// Protocol (every message is frames of text):
//   worker -> broker   READY   <service>
//   broker -> worker   REQUEST <client-id> <body>
//   worker -> broker   REPLY   <client-id> <body>
//   client -> broker   REQUEST <service> <body>
//   broker -> client   REPLY   <service> <body>     or  ERROR <reason>
//   broker -> worker   HEARTBEAT                     (every second)
//
// Run it:  moebius-js serve examples/broker.js
//
// Kept short on purpose: a worker that leaves with a request in hand loses
// it (Majordomo's clients retry), and there is one queue per service.

const { server, sleep, text, log } = require('moebius');

/** @typedef {import('moebius').Client} Client */
/** @typedef {{ idle: string[], waiting: { client: string, body: string }[] }} Service */

/** @type {Map<string, Service>} */
const services = new Map(); // service name -> { idle: [worker ids], waiting: [{client, body}] }
/** @type {Map<string, string>} */
const workers = new Map();  // worker id -> service name

/**
 * @param {string} name
 * @returns {Service}
 */
function service(name) {
  if (!services.has(name)) services.set(name, { idle: [], waiting: [] });
  return /** @type {Service} */ (services.get(name));
}

// dispatch hands waiting requests to idle workers that are still connected.
/** @param {Service} svc */
function dispatch(svc) {
  while (svc.idle.length > 0 && svc.waiting.length > 0) {
    const worker = /** @type {string} */ (svc.idle.shift());
    if (!server.client(worker)) { workers.delete(worker); continue; } // it left
    const { client, body } = /** @type {{ client: string, body: string }} */ (svc.waiting.shift());
    server.send(worker, 'REQUEST', client, body);
  }
}

/**
 * @param {Client} client a worker
 * @param {Uint8Array[]} frames READY <service>
 */
function ready(client, frames) {
  const name = text(frames[1]);
  workers.set(client.id, name);
  service(name).idle.push(client.id);
  dispatch(service(name));
}

/**
 * @param {Client} client
 * @param {Uint8Array[]} frames REQUEST <service> <body>
 */
function request(client, frames) {
  const name = text(frames[1]);
  if (![...workers.values()].includes(name)) {
    client.send('ERROR', `no worker offers ${name}`);
    return;
  }
  service(name).waiting.push({ client: client.id, body: text(frames[2] || new Uint8Array()) });
  dispatch(service(name));
}

/**
 * @param {Client} worker
 * @param {Uint8Array[]} frames REPLY <client-id> <body>
 */
function reply(worker, frames) {
  const name = /** @type {string} */ (workers.get(worker.id)); // a worker that never said READY: undefined
  const clientId = text(frames[1]);
  try {
    server.send(clientId, 'REPLY', name, text(frames[2]));
  } catch (e) {
    log.warn('client left before its reply', { client: clientId });
  }
  service(name).idle.push(worker.id);
  dispatch(service(name));
}

module.exports = /** @satisfies {import('moebius').Handlers} */ ({
  route(message) {
    const verb = message.text;
    if (verb === 'READY') return { handler: ready, data: message.frames };
    if (verb === 'REQUEST') return { handler: request, data: message.frames };
    if (verb === 'REPLY') return { handler: reply, data: message.frames };
    return null; // anything else gets a no_route error reply
  },

  *background(srv) {
    for (;;) {
      yield sleep(1000);
      for (const id of workers.keys()) {
        const w = srv.client(id);
        if (w) w.send('HEARTBEAT');
        else workers.delete(id); // gone: forget it
      }
    }
  },
});
