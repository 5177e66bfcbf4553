// handlers.js — what moebius-js serves out of the box, and a tour of its API.
//
// Each request is a JSON object; its "command" picks a rule below, and the
// rule's handler gets (client, data, message). Try them with
//
//   moebius-js send '{"command":"echo","hello":"world"}'
//   moebius-js send '{"command":"reply"}'
//   moebius-js send --count 6 '{"command":"stream","count":5}'
//   moebius-js send '{"command":"upper","key":"moebius"}'
//   moebius-js send --count 4 '{"command":"subscribe"}'
//
// Save this file while the server runs and the new code is live for the
// next request; a mistake is logged with file:line:col and the old code
// keeps serving.
//
// The /** ... */ comments are types, for an editor or tsc: `moebius-js
// types .` writes moebius.d.ts and jsconfig.json next to this file.

const { sleep, server, log } = require('moebius');

/** @typedef {import('moebius').Client} Client */

// A plain function runs at once and completes in the same step.
// client.send(x): a string goes as UTF-8 text, a Uint8Array as bytes,
// anything else as JSON text.
/**
 * @param {Client} client
 * @param {any} data the request's JSON value
 */
function echo(client, data) {
  client.send(data);
}

// A generator (function*) is cooperative: `yield sleep(ms)` waits without
// blocking anyone else, and other clients are served meanwhile.
/** @param {Client} client */
function* reply(client, data) {
  yield sleep(500);
  client.send(`Reply to ${client.id}`);
}

// One request, many replies. A bare `yield` lets other clients run
// between two replies.
/**
 * @param {Client} client
 * @param {{ count?: unknown }} data
 */
function* stream(client, data) {
  const count = Math.min(Math.max(Number(data.count) || 10, 0), 100000);
  for (let i = 0; i < count; i++) {
    client.send({ i });
    yield;
  }
  client.send({ done: count });
}

// A nested generator: `yield lookup(key)` runs it to the end and resumes
// with its return value. An error thrown inside it is thrown at that
// `yield`, so try/catch works across generators.
/**
 * @param {unknown} key
 * @returns {Generator<unknown, string>}
 */
function* lookup(key) {
  yield sleep(10); // pretend to ask something slow
  if (typeof key !== 'string' || key === '') throw new Error('key must be a non-empty string');
  return key.toUpperCase();
}

/**
 * @param {Client} client
 * @param {{ key?: unknown }} data
 */
function* upper(client, data) {
  try {
    client.send({ key: data.key, upper: yield lookup(data.key) });
  } catch (e) {
    client.send({ error: { code: 'bad_key', message: e.message } });
  }
}

// client.state is a plain object kept for this client across its requests.
/** @param {Client} client */
function count(client) {
  client.state.count = (client.state.count || 0) + 1;
  client.send({ count: client.state.count });
}

// subscribe: the background work below sends this client a tick every
// second, until it unsubscribes (or disconnects).
/** @param {Client} client */
function subscribe(client) {
  client.state.subscribed = true;
  client.send({ subscribed: true });
}

/** @param {Client} client */
function unsubscribe(client) {
  client.state.subscribed = false;
  client.send({ subscribed: false });
}

// Broadcast to every connected client (the sender too). A second argument,
// a filter function, picks whom: see README.
/**
 * @param {Client} client
 * @param {{ text?: unknown }} data
 */
function say(client, data) {
  const text = String(data.text).slice(0, 1000); // everyone gets a copy: keep it short
  server.broadcast({ from: client.id, text });
}

module.exports = /** @satisfies {import('moebius').Handlers} */ ({
  rules: [
    { command: 'echo', handler: echo },
    { command: 'reply', handler: reply },
    // replace: a new stream request from the same client cancels the old one
    { command: 'stream', handler: stream, strategy: 'replace' },
    { command: 'upper', handler: upper },
    { command: 'count', handler: count },
    { command: 'say', handler: say },
    { command: 'subscribe', handler: subscribe },
    { command: 'unsubscribe', handler: unsubscribe },
  ],

  // Background work: starts with the server, and again (the old one
  // cancelled) each time this file is reloaded.
  *background(srv) {
    for (let n = 1; ; n++) {
      yield sleep(1000);
      srv.iterate((c) => {
        if (c.state.subscribed) c.send({ tick: n });
      });
    }
  },

  // A handler can also await other ZeroMQ servers without blocking anyone:
  //   const answer = yield request('tcp://127.0.0.1:5556', { command: 'reply' }, { timeout: 2000 });
  // (see README: "Talking to other servers").

  // Optional hooks (see README): onMessageError(client, message, error) for
  // requests that cannot be routed, onStepError(client, error) for handlers
  // that throw. Without them the client gets the JSON error reply
  // {"error":{"code":…,"message":…}} and the log gets the JS stack.
});
