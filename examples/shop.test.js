// Tests of examples/shop.js: `moebius-js test examples/` runs them on a
// virtual clock with simulated clients; no sockets, no pricing server.
const { test, assert } = require('moebius/test');

test('hello greets the client by its id', (t) => {
  const ann = t.connect('ann');
  ann.send({ command: 'hello' });
  assert.deepEqual(ann.take(), { hello: 'ann' });
});

test('each client has a cart of its own, kept across a reload', (t) => {
  const ann = t.connect('ann');
  const bob = t.connect('bob');
  ann.send({ command: 'add', sku: 'tea' });
  bob.send({ command: 'add', sku: 'cake' });
  t.reload();
  ann.send({ command: 'add', sku: 'cake' });
  assert.deepEqual(ann.received(), [{ cart: ['tea'] }, { cart: ['tea', 'cake'] }]);
  assert.deepEqual(bob.received(), [{ cart: ['cake'] }]);
});

test('a product takes the catalogue 5 ms to find', (t) => {
  const ann = t.connect('ann');
  ann.send({ command: 'product', sku: 'tea' });
  t.advance(4);
  assert.equal(ann.received().length, 0);
  t.advance(1);
  assert.deepEqual(ann.take(), { sku: 'tea', name: 'Green tea' });
});

test('an unknown product is an error reply', (t) => {
  const ann = t.connect('ann');
  ann.send({ command: 'product', sku: 'soup' });
  t.advance(5);
  const reply = ann.take();
  assert.equal(reply.error.code, 'handler_error');
  assert.match(reply.error.message, /no product soup/);
});

test('the price comes from the pricing server', (t) => {
  t.stub('tcp://127.0.0.1:5556', (req) => (req.sku === 'tea' ? 3.5 : 0));
  const ann = t.connect('ann');
  ann.send({ command: 'price', sku: 'tea' });
  assert.deepEqual(ann.take(), { sku: 'tea', price: 3.5 });
});

test('a pricing server that does not answer times out after 2 s', (t) => {
  t.stub('tcp://127.0.0.1:5556', () => undefined);
  const ann = t.connect('ann');
  ann.send({ command: 'price', sku: 'tea' });
  t.advance(1999);
  assert.equal(ann.received().length, 0);
  t.advance(1);
  assert.deepEqual(ann.take(), { error: 'pricing is down' });
});

test('a new search replaces the one still waiting', (t) => {
  const ann = t.connect('ann');
  ann.send({ command: 'search', q: 't' });
  t.advance(100);
  ann.send({ command: 'search', q: 'te' });
  t.advance(300);
  assert.deepEqual(ann.received(), [{ q: 'te', found: ['tea'] }]);
});

test('every minute everyone hears the offer', (t) => {
  const ann = t.connect('ann');
  const bob = t.connect('bob');
  t.advance(60_000);
  bob.disconnect();
  t.advance(60_000);
  assert.deepEqual(ann.received(), [{ offer: 'tea' }, { offer: 'cake' }]);
  assert.deepEqual(bob.received(), [{ offer: 'tea' }]);
  assert.equal(bob.connected, false);
});
