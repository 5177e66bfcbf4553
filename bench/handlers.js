// The handlers the side-by-side benchmark harness measures every server
// with (its contract):
//   {"command":"reply"} -> one frame "Reply to <identity>", at once
//   {"command":"sleep"} -> the same reply after a 10 s non-blocking sleep
const { sleep } = require('moebius');

function reply(client) {
  client.send('Reply to ' + client.id);
}

function* sleepThenReply(client) {
  yield sleep(10000);
  client.send('Reply to ' + client.id);
}

module.exports = {
  rules: [
    { command: 'reply', handler: reply },
    { command: 'sleep', handler: sleepThenReply },
  ],
};
