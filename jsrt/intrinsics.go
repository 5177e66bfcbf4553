package jsrt

import (
	"fmt"

	"github.com/dop251/goja"
)

// intrinsics are the JavaScript built-ins one runtime uses, as they were
// before handlers.js ran (it may overwrite the globals), and the moebius
// error classes. Read on the runtime's goroutine.
type intrinsics struct {
	jsonParse       goja.Callable
	jsonStringify   goja.Callable
	genProto        *goja.Object // %GeneratorPrototype%
	genFuncProto    *goja.Object // %GeneratorFunction.prototype%
	genNext         goja.Callable
	genThrow        goja.Callable
	genReturn       goja.Callable
	uint8Array      goja.Value
	timeoutError    *goja.Object
	clientGoneError *goja.Object
	errorCtor       goja.Value // Error, TypeError, RangeError
	typeErrorCtor   goja.Value
	rangeErrorCtor  goja.Value
	ownDescriptor   goja.Callable // Object.getOwnPropertyDescriptor
	setOwn          goja.Callable // (o, k, v): define k as o's own data property, for keys Go strings cannot hold
	fnToString      goja.Callable // Function.prototype.toString: call it with the function as this
}

// newIntrinsics looks up the JavaScript built-ins the runtime uses on hot
// paths in vm, before any script ran, and defines the moebius error
// classes. The goroutine that owns vm.
func newIntrinsics(vm *goja.Runtime) (intrinsics, error) {
	var js intrinsics
	v, err := vm.RunString(`(function () {
  class TimeoutError extends Error {
    constructor(message) { super(message); this.name = 'TimeoutError'; }
  }
  class ClientGoneError extends Error {
    constructor(message) { super(message); this.name = 'ClientGoneError'; }
  }
  const genFuncProto = Object.getPrototypeOf(function* () {});
  const defineProperty = Object.defineProperty;
  const setOwn = (o, k, v) => {
    defineProperty(o, k, { value: v, writable: true, enumerable: true, configurable: true });
  };
  return [JSON.parse, JSON.stringify, genFuncProto.prototype,
          Uint8Array, TimeoutError, ClientGoneError, genFuncProto,
          Error, TypeError, RangeError, Object.getOwnPropertyDescriptor, setOwn,
          Function.prototype.toString];
})()`)
	if err != nil {
		return js, fmt.Errorf("set up runtime: %w", err)
	}
	parts := v.(*goja.Object)
	get := func(i int) goja.Value { return parts.Get(fmt.Sprint(i)) }
	js.jsonParse, _ = goja.AssertFunction(get(0))
	js.jsonStringify, _ = goja.AssertFunction(get(1))
	js.genProto = get(2).(*goja.Object)
	js.genNext, _ = goja.AssertFunction(js.genProto.Get("next"))
	js.genThrow, _ = goja.AssertFunction(js.genProto.Get("throw"))
	js.genReturn, _ = goja.AssertFunction(js.genProto.Get("return"))
	js.uint8Array = get(3)
	js.timeoutError = get(4).(*goja.Object)
	js.clientGoneError = get(5).(*goja.Object)
	js.genFuncProto = get(6).(*goja.Object)
	js.errorCtor, js.typeErrorCtor, js.rangeErrorCtor = get(7), get(8), get(9)
	js.ownDescriptor, _ = goja.AssertFunction(get(10))
	js.setOwn, _ = goja.AssertFunction(get(11))
	js.fnToString, _ = goja.AssertFunction(get(12))
	return js, nil
}
