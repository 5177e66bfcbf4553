// A custom router: a raw-text protocol (the ZeroMQ guide's hello world) and
// a binary multipart mirror.
function hello(client, data) { client.send(data === 'Hello' ? 'World' : 'Pardon?'); }
function mirror(client, data, message) { client.send(...message.frames.slice().reverse()); }

module.exports = {
  route(message, client) {
    return message.frames.length > 1 ? { handler: mirror } : { handler: hello };
  },
};
