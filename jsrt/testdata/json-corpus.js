// Writes json-corpus.txt: for each input, what JavaScript's JSON.parse
// makes of it, rendered by render (JSON.stringify, but keeping -0 and the
// infinities), or "error". Run with Node (V8 is the reference engine):
//   node json-corpus.js > json-corpus.txt
// Each line is JSON.stringify(input), a tab, then the result. jsrt's
// json_test.go renders parseJSON's values with the same render.
const render = v => JSON.stringify(v, (k, x) =>
  typeof x === 'number' && (!isFinite(x) || Object.is(x, -0)) ? 'number ' + (Object.is(x, -0) ? '-0' : x) : x);
const inputs = [
  // valid
  '{"command":"echo","n":1}', '[]', '{}', '[1,2,[3,[4]]]', ' {"a" : [ true , false , null ] } ',
  '"str"', '"esc \\" \\\\ \\/ \\b \\f \\n \\r \\t \\u00e9 \\ud83d\\ude00"', '"héllo ✓"',
  '0', '-0', '-1', '1.5', '1e3', '1E-3', '-2.5e+10', '9007199254740993', '12345678901234567890',
  '1e400', '-1e400', '1e-400', '[1e309, -1e309, 4.9e-324, 1.7976931348623157e308]',
  '{"__proto__":{"x":1},"y":2}', '{"a":1,"a":2}', '{"b":1,"a":2}',
  '"\\ud800"', '"a\\udc00b"', '"\\udc00\\ud800"', '"\\ud800\\ud800\\udc00"', '"\\ud83d"', '"x\\ude00"',
  '{"command":"echo","s":"\\udc00x"}', '{"\\udc00":1,"b":"\\ud800"}', '[{"k\\ud800":["\\udfff"]}]',
  '{"command":"echo","n":1e400}', '{"s":"\\udc00","n":-1e999}',
  '"\\u0000"', '"\\uFFFF"', '"\\uD834\\uDD1E"', '"tab\\there"', '  \t\n\r 1 \n',
  // invalid
  '', ' ', '{', '}', '[1,]', '{"a":1,}', '{"a" 1}', '{a:1}', '01', '1.', '.5', '-', '1e', '+1',
  'tru', 'nul', '"unterminated', '"ctl\u0001"', '"\\x"', '"\\u12"', '"\\u12g4"', '[1 2]', '{"a":1}x',
  'NaN', 'Infinity', '-Infinity', "'single'", '\ufeff{}', '"\\ud800', '{"\\ud800"}', '[1e]', '1e+',
  '"a\nb"', '{"a":1 "b":2}', '[,1]', '-01', '0x10', '1_000',
];
for (const input of inputs) {
  let out;
  try { out = render(JSON.parse(input)); } catch { out = 'error'; }
  console.log(JSON.stringify(input) + '\t' + out);
}
