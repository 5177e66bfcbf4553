// handlers.js: what this server does. Each rule maps a command to a
// handler; a client sends {"command": "hello", ...} and gets replies.
// moebius.d.ts gives your editor the API; `moebius-js test` runs
// handlers.test.js; edits go live without a restart.
const { sleep } = require('moebius');

module.exports = /** @satisfies {import('moebius').Handlers} */ ({
  rules: [
    // A plain function answers at once.
    { command: 'hello', handler: (client, data) => client.send({ hello: data.name || client.id }) },

    // State kept per client (and across reloads).
    {
      command: 'count',
      handler(client) {
        client.state.count = (client.state.count || 0) + 1;
        client.send({ count: client.state.count });
      },
    },

    // A generator waits without blocking anyone: yield sleep(ms).
    {
      command: 'later',
      *handler(client, data) {
        yield sleep(data.ms);
        client.send({ done: data.ms });
      },
    },
  ],
});
