// A zeromq.js 6 CURVE client for tests/curve_interop_test.go.
//
//   node curve_client.js ENDPOINT SERVER_KEY PUBLIC_KEY SECRET_KEY FRAME...
//
// A Dealer with the three keys (Z85 text) sends one message of the given
// text frames and prints the reply as one JSON line {"reply": [text...]}.
// It exits 1 with a message on stderr when no reply comes within 5 s.
'use strict';

const zmq = require('zeromq');

async function main() {
  const [endpoint, serverKey, publicKey, secretKey, ...frames] = process.argv.slice(2);
  if (frames.length === 0) {
    throw new Error('usage: curve_client.js ENDPOINT SERVER_KEY PUBLIC_KEY SECRET_KEY FRAME...');
  }
  if (!zmq.capability.curve) {
    throw new Error(`this zeromq.js (libzmq ${zmq.version}) has no CURVE`);
  }
  const sock = new zmq.Dealer({
    curveServerKey: serverKey,
    curvePublicKey: publicKey,
    curveSecretKey: secretKey,
    linger: 0,
    sendTimeout: 5000,
    receiveTimeout: 5000,
  });
  try {
    sock.connect(endpoint);
    await sock.send(frames);
    const reply = await sock.receive();
    console.log(JSON.stringify({ reply: reply.map((f) => f.toString('utf8')) }));
  } finally {
    sock.close();
  }
}

main().catch((err) => {
  console.error(`curve_client.js: ${err && err.message ? err.message : err}`);
  process.exit(1);
});
