// A handlers file with mistakes that tsc must find: tests/types_test.go
// checks that tsc reports an error on each line whose comment starts with
// "tsc:" (saying what is wrong), and on no other line. It is never served.

const { sleep, server, request, dealer, text, log, cluster } = require('moebius');

/** @typedef {import('moebius').Client} Client */

/** @param {Client} client */
function* greet(client) {
  yield sleep('5'); // tsc: sleep takes a number of milliseconds
  client.sned('hello'); // tsc: a misspelled client method
  client.id = 'someone else'; // tsc: id is read-only
  client.send(); // tsc: send needs at least one frame
}

/** @param {string} who */
function shout(who) {
  return who.toUpperCase();
}

/**
 * @param {Client} client
 * @param {any} data
 */
function* relay(client, data) {
  const peer = server.client(data.to);
  peer.send('hi'); // tsc: server.client may return null
  const answer = yield request('tcp://127.0.0.1:5556', data, { timeout: '2s' }); // tsc: timeout is a number
  client.send(answer);
  const d = dealer('tcp://127.0.0.1:5556', { identiti: 'me' }); // tsc: a misspelled option
  d.send(text('not bytes')); // tsc: text() decodes bytes
  log.info('relayed', 'to a peer'); // tsc: fields are an object
  client.send(client.publicKey.length); // tsc: publicKey is null without CURVE
  setTimeout(() => client.send('late'), 10); // tsc: the runtime has no timers
}

module.exports = /** @satisfies {import('moebius').Handlers} */ ({
  rules: [
    { command: 'greet', handler: greet, strategy: 'sometimes' }, // tsc: not a strategy
    { command: 'shout', handler: shout }, // tsc: a handler's first argument is a Client
    { command: 'relay', handler: relay },
    { comand: 'typo', handler: greet }, // tsc: a misspelled rule key
  ],
  onMessageError(client, message, error) {
    if (error.code === 'handler_error') return; // tsc: this hook never sees handler_error
    client.send({ error: { code: error.code, message: error.message }, request: message.text });
  },
  authorize: (publicKey) => (publicKey.startsWith('rJ') ? 'yes' : false), // tsc: authorize returns a boolean
  *background(srv) {
    cluster.publish(42, 'tick'); // tsc: a subject is a string
    srv.broadcast('tick', (c) => c.state.subscribed);
    srv.spawn(greet, 'not a client'); // tsc: spawn's arguments are fn's
  },
});
