package jsrt_test

import (
	"testing"

	"github.com/moebius-js/moebius-js/jsrt"
)

// tsHandlers is a TypeScript handlers file: types above the code move
// nothing, since stacks go through its inline source map.
const tsHandlers = `import { sleep } from 'moebius';
const helper = require('./lib.ts');

interface Order {
  item: string;
  qty: number;
}

export function* order(client: any, data: Order): Generator<unknown, void, unknown> {
  yield sleep(1);
  if (data.qty < 1) {
    throw new RangeError('qty must be positive, got ' + data.qty);
  }
  client.send(helper.describe(data));
}

export const rules = [
  { command: 'order', handler: order },
  { command: 'fail', handler: function (client: any, data: Order) { helper.fail(data.item); } },
];
`

const tsLib = `type Named = { item: string, qty: number };

export function describe(o: Named): string {
  return o.qty + ' x ' + o.item;
}

export function fail(item: string): never {
  throw new Error('no ' + item);
}
`

func TestTypeScriptHandlersServeAndTheirStacksNameTheTsLines(t *testing.T) {
	e := start(t, jsrt.Config{}, map[string]string{"handlers.ts": tsHandlers, "lib.ts": tsLib})
	e.connect("c")
	e.send("c", `{"command":"order","item":"tea","qty":2}`)
	if got := e.reply("c", 1); got != "2 x tea" {
		t.Fatalf("reply %q", got)
	}
	e.send("c", `{"command":"order","item":"tea","qty":0}`)
	e.reply("c", 2)
	e.waitLog("handlers.ts:12:11")
	e.send("c", `{"command":"fail","item":"cake"}`)
	e.reply("c", 3)
	e.waitLog("lib.ts:8:9")
	e.waitLog("handlers.ts:19:76")
}

// A position on a .ts file's first line comes from its source map, and is
// not shifted as a .js file's first line is (by the CommonJS header).
func TestTypeScriptFirstLinePositionsAreNotShifted(t *testing.T) {
	e := start(t, jsrt.Config{}, map[string]string{"handlers.ts": "export const rules = [{ command: 'x', handler: (c: any) => { throw new Error('first line'); } }];\n"})
	e.connect("c")
	e.send("c", `{"command":"x"}`)
	e.reply("c", 1)
	e.waitLog("handlers.ts:1:68")
}
