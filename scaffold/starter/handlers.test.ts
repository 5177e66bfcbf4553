// handlers.test.ts: `moebius-js test` runs these against handlers.ts on a
// virtual clock, with simulated clients and no sockets.
import { test, assert } from 'moebius/test';

test('hello greets by name, else by id', (t) => {
  const ann = t.connect('ann');
  ann.send({ command: 'hello', name: 'Ann' });
  ann.send({ command: 'hello' });
  assert.deepEqual(ann.received(), [{ hello: 'Ann' }, { hello: 'ann' }]);
});

test('each client counts on its own', (t) => {
  const ann = t.connect('ann');
  const bob = t.connect('bob');
  ann.send({ command: 'count' });
  ann.send({ command: 'count' });
  bob.send({ command: 'count' });
  assert.deepEqual(ann.take(), { count: 1 });
  assert.deepEqual(ann.take(), { count: 2 });
  assert.deepEqual(bob.take(), { count: 1 });
});

test('later answers when its time comes', (t) => {
  const ann = t.connect('ann');
  ann.send({ command: 'later', ms: 1000 });
  t.advance(999);
  assert.equal(ann.received().length, 0);
  t.advance(1);
  assert.deepEqual(ann.take(), { done: 1000 });
});

test('an unknown command gets an error reply', (t) => {
  const ann = t.connect('ann');
  ann.send({ command: 'nope' });
  assert.equal(ann.take().error.code, 'unknown_command');
});
