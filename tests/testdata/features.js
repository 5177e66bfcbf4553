// Handlers for the end-to-end tests of issue 2's features.
const { sleep, server } = require('moebius');

function echo(client, data) { client.send(data); }

// Sleeps about 100 ms three times, then replies with its tag.
function* tagged(client, data) {
  for (let i = 0; i < 3; i++) yield sleep(100);
  client.send(data.tag);
}

function* stream(client, data) {
  for (let i = 0; i < data.count; i++) {
    client.send(String(i));
    yield data.pause ? sleep(data.pause) : undefined;
  }
}

function* lookup(key) { yield sleep(5); return key.toUpperCase(); }
function* fails(msg) { yield; throw new Error(msg); }
function* nested(client, data) {
  const value = yield lookup(data.key);
  let caught = null;
  try { yield fails('deep trouble'); } catch (e) { caught = e.message; }
  client.send({ value, caught });
}

function boom() { throw new Error('handler exploded'); }

function remember(client, data) {
  if (data.set !== undefined) client.state.value = data.set;
  client.send({ value: client.state.value === undefined ? null : client.state.value });
}

function subscribe(client) { client.state.subscribed = true; client.send('subscribed'); }
function announce(client, data) {
  client.broadcast(data.text, (c) => c.state.subscribed === true);
  client.send('announced');
}

module.exports = {
  rules: [
    { command: 'echo', handler: echo },
    { command: 'queue', handler: tagged, strategy: 'queue' },
    { command: 'ignore', handler: tagged, strategy: 'ignore' },
    { command: 'replace', handler: tagged, strategy: 'replace' },
    { command: 'stream', handler: stream },
    { command: 'nested', handler: nested },
    { command: 'boom', handler: boom },
    { command: 'remember', handler: remember },
    { command: 'subscribe', handler: subscribe },
    { command: 'announce', handler: announce },
  ],
};
