// A small shop, and examples/shop.test.js its tests: run them with
//   moebius-js test examples/
// Serve it with `moebius-js serve examples/shop.js`; its prices come from
// a pricing server at tcp://127.0.0.1:5556 (any ROUTER or REP that answers
// {"command":"price","sku":…} with a number).
const { sleep, request, server, TimeoutError } = require('moebius');

const PRICING = 'tcp://127.0.0.1:5556';

/** @type {Record<string, string>} */
const names = { tea: 'Green tea', cake: 'Lemon cake' };

/**
 * Looks a product up; a nested generator, run with `yield find(sku)`.
 * @param {string} sku
 */
function* find(sku) {
  yield sleep(5); // the catalogue is slow
  if (!(sku in names)) throw new RangeError('no product ' + sku);
  return { sku, name: names[sku] };
}

module.exports = /** @satisfies {import('moebius').Handlers} */ ({
  rules: [
    // A plain handler: runs at once.
    { command: 'hello', handler: (client) => client.send({ hello: client.id }) },

    // State per client, kept across reloads.
    {
      command: 'add',
      handler(client, data) {
        const cart = (client.state.cart = client.state.cart || []);
        cart.push(data.sku);
        client.send({ cart });
      },
    },

    // A nested generator, and an error that becomes an error reply.
    {
      command: 'product',
      *handler(client, data) {
        client.send(yield find(data.sku));
      },
    },

    // Another server, with a deadline.
    {
      command: 'price',
      *handler(client, data) {
        try {
          const price = yield request(PRICING, { command: 'price', sku: data.sku }, { timeout: 2000 });
          client.send({ sku: data.sku, price: Number(price) });
        } catch (e) {
          if (e instanceof TimeoutError) client.send({ error: 'pricing is down' });
          else throw e;
        }
      },
    },

    // Search as you type: each new query replaces the one still waiting.
    {
      command: 'search',
      strategy: 'replace',
      *handler(client, data) {
        yield sleep(300); // wait for the typing to pause
        const q = String(data.q).toLowerCase();
        client.send({ q: data.q, found: Object.keys(names).filter((k) => names[k].toLowerCase().includes(q)) });
      },
    },
  ],

  // Every minute, tell everyone what is on offer.
  *background() {
    for (let n = 1; ; n++) {
      yield sleep(60_000);
      server.broadcast({ offer: n % 2 ? 'tea' : 'cake' });
    }
  },
});
