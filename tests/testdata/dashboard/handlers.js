// Handlers for the dashboard's browser tests (tests/dashboard_test.go).
// The tests find the line of the throw in boom() by its text, so that text
// must stay on exactly one line of this file.
const { sleep, server } = require('moebius');

function echo(client, data) {
  client.send(data);
}

function boom() {
  throw new Error('boom');
}

// Replies after sleeping data.ms milliseconds (100 by default).
function* slow(client, data) {
  const ms = data.ms === undefined ? 100 : data.ms;
  yield sleep(ms);
  client.send({ slept: ms });
}

// Two replies, 50 ms apart.
function* twice(client, data) {
  client.send('first ' + data.n);
  yield sleep(50);
  client.send('second ' + data.n);
}

// The ids of the connected clients, sorted.
function who(client) {
  client.send({ ids: server.clients().map((c) => c.id).sort() });
}

module.exports = {
  rules: [
    { command: 'echo', handler: echo },
    { command: 'boom', handler: boom },
    { command: 'slow', handler: slow },
    { command: 'twice', handler: twice },
    { command: 'who', handler: who },
  ],
};
