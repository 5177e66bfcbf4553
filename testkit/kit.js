// require('moebius/test'): the test kit's JavaScript face. It is compiled
// once per test-file runtime as a function of `binding`, the Go side
// (js.go), and returns the module's exports and the factory of each
// test's context.
(function (binding) {
  'use strict';

  class AssertionError extends Error {
    constructor(message, actual, expected) {
      super(message);
      this.name = 'AssertionError';
      this.actual = actual;
      this.expected = expected;
    }
  }

  function show(v) {
    if (typeof v === 'string') return JSON.stringify(v);
    if (typeof v === 'function') return '[function ' + (v.name || 'anonymous') + ']';
    if (v instanceof ArrayBuffer) return '<' + v.byteLength + ' bytes>';
    if (typeof v === 'number' && (Number.isNaN(v) || !Number.isFinite(v))) return String(v);
    try {
      const s = JSON.stringify(v);
      return s === undefined ? String(v) : s;
    } catch (e) {
      return String(v);
    }
  }

  function failWith(message, fallback, actual, expected) {
    throw new AssertionError(message === undefined ? fallback : String(message), actual, expected);
  }

  function same(a, b) {
    return a === b || (a !== a && b !== b); // NaN equals NaN
  }

  function deepSame(a, b) {
    if (same(a, b)) return true;
    if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
    if (Array.isArray(a) !== Array.isArray(b)) return false;
    if (Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return false;
    if (a instanceof ArrayBuffer) {
      if (a.byteLength !== b.byteLength) return false;
      const x = new Uint8Array(a), y = new Uint8Array(b);
      for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
      return true;
    }
    const ka = Object.keys(a), kb = Object.keys(b);
    if (ka.length !== kb.length) return false;
    for (const k of ka) {
      if (!Object.prototype.hasOwnProperty.call(b, k) || !deepSame(a[k], b[k])) return false;
    }
    return true;
  }

  function assert(value, message) {
    if (!value) failWith(message, 'expected a truthy value, got ' + show(value), value, true);
  }
  assert.ok = assert;
  assert.equal = function (actual, expected, message) {
    if (!same(actual, expected)) failWith(message, 'expected ' + show(expected) + ', got ' + show(actual), actual, expected);
  };
  assert.notEqual = function (actual, expected, message) {
    if (same(actual, expected)) failWith(message, 'expected anything but ' + show(expected), actual, expected);
  };
  assert.deepEqual = function (actual, expected, message) {
    if (!deepSame(actual, expected)) failWith(message, 'expected ' + show(expected) + ', got ' + show(actual), actual, expected);
  };
  assert.notDeepEqual = function (actual, expected, message) {
    if (deepSame(actual, expected)) failWith(message, 'expected anything but ' + show(expected), actual, expected);
  };
  assert.match = function (actual, re, message) {
    if (typeof actual !== 'string' || !re.test(actual)) failWith(message, 'expected ' + show(actual) + ' to match ' + re, actual, re);
  };
  assert.throws = function (fn, expected, message) {
    try {
      fn();
    } catch (e) {
      const text = e && e.message !== undefined ? String(e.message) : String(e);
      if (expected === undefined) return e;
      if (expected instanceof RegExp) {
        if (!expected.test(text)) failWith(message, 'threw ' + show(text) + ', which does not match ' + expected, e, expected);
      } else if (typeof expected === 'string') {
        if (text.indexOf(expected) < 0) failWith(message, 'threw ' + show(text) + ', which does not contain ' + show(expected), e, expected);
      } else if (typeof expected === 'function') {
        if (!(e instanceof expected)) failWith(message, 'threw ' + String(e) + ', not a ' + (expected.name || 'the expected error'), e, expected);
      }
      return e;
    }
    failWith(message, 'expected the function to throw', undefined, expected);
  };
  assert.fail = function (message) {
    failWith(message, 'failed');
  };

  // A frame as it goes out: strings as they are, bytes as bytes, anything
  // else as JSON.
  function encode(v) {
    if (typeof v === 'string' || v instanceof ArrayBuffer) return v;
    if (ArrayBuffer.isView(v)) return v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength);
    const s = JSON.stringify(v);
    if (s === undefined) throw new TypeError('cannot send ' + String(v) + ' as a frame');
    return s;
  }

  // A message as it comes in: each frame JSON-parsed where it parses (else
  // its text, or an ArrayBuffer when it is not UTF-8); one frame alone,
  // several as an array.
  function decode(frames) {
    const out = frames.map(function (f) {
      if (typeof f !== 'string') return f;
      try {
        return JSON.parse(f);
      } catch (e) {
        return f;
      }
    });
    return out.length === 1 ? out[0] : out;
  }

  function test(name, fn) {
    if (typeof name !== 'string' || typeof fn !== 'function') throw new TypeError('test(name, fn): a name and a function');
    binding.register(name, fn, false);
  }
  test.skip = function (name, fn) {
    binding.register(String(name), fn, true);
  };

  // context builds the `t` of one test over that test's server.
  function context(sim) {
    function client(id, handle) {
      return Object.freeze({
        id: id,
        send: function () {
          if (arguments.length === 0) throw new TypeError('send() needs at least one frame');
          sim.send(handle, Array.prototype.map.call(arguments, encode));
        },
        take: function () {
          const m = sim.take(handle);
          if (m === null) throw new AssertionError('client ' + JSON.stringify(id) + ' has received nothing more (' + sim.received(handle).length + ' messages in all)');
          return decode(m);
        },
        received: function () {
          return sim.received(handle).map(decode);
        },
        disconnect: function () {
          sim.disconnect(handle);
        },
        get connected() {
          return sim.connected(handle);
        },
      });
    }
    return Object.freeze({
      connect: function (id, options) {
        if (typeof id !== 'string' || id === '') throw new TypeError('connect(id): id must be a non-empty string');
        const key = options && options.publicKey ? String(options.publicKey) : '';
        return client(id, sim.connect(id, key));
      },
      advance: function (ms) {
        if (typeof ms !== 'number' || !(ms >= 0) || !Number.isFinite(ms)) throw new TypeError('advance(ms): ms must be a finite number >= 0');
        sim.advance(ms);
      },
      now: function () {
        return sim.now();
      },
      reload: function () {
        sim.reload();
      },
      stub: function (endpoint, answer) {
        if (typeof endpoint !== 'string' || typeof answer !== 'function') throw new TypeError('stub(endpoint, answer): a string and a function');
        sim.stub(endpoint, function (frames, reply) {
          const upstream = Object.freeze({
            send: function () {
              reply(Array.prototype.map.call(arguments, encode));
            },
          });
          const r = answer(decode(frames), upstream);
          if (r !== undefined && r !== null) reply(Array.isArray(r) ? r.map(encode) : [encode(r)]);
        });
      },
      logs: function () {
        return sim.logs();
      },
    });
  }

  return { exports: { test: test, assert: assert, AssertionError: AssertionError }, context: context };
})
