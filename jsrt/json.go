package jsrt

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/dop251/goja"
)

// maxJSONDepth bounds nesting, so that a payload of a million '[' cannot
// exhaust the stack.
const maxJSONDepth = 1000

// parseJSON turns a request payload into JavaScript values, as the
// language's JSON.parse does, straight from its bytes. It exists because
// the default router parses every request and goja's JSON.parse (a string
// conversion, then encoding/json's tokenizer) took half of the scheduler
// goroutine's time; it also differs from the standard where goja's does:
// a lone surrogate escape ("\udc00") stays one, as in any JavaScript
// engine, where goja makes it U+FFFD, and a number beyond float64's range
// ("1e400") is Infinity, where goja refuses it.
func (rt *jsRuntime) parseJSON(data []byte) (goja.Value, error) {
	p := jsonParser{vm: rt.vm, setOwn: rt.js.setOwn, data: data}
	p.skipSpace()
	v, err := p.value(0)
	if err != nil {
		return nil, err
	}
	return v, p.end()
}

// end checks that nothing but white space follows the JSON value.
func (p *jsonParser) end() error {
	p.skipSpace()
	if p.pos != len(p.data) {
		return p.errorf("unexpected %s after the JSON value", p.describe())
	}
	return nil
}

type jsonParser struct {
	vm     *goja.Runtime
	setOwn goja.Callable // defines a key a Go string cannot hold
	data   []byte
	pos    int
	buf    []byte // scratch for strings with escapes
}

// jsonString is a decoded JSON string: its text, or, when it holds a lone
// surrogate escape (which a Go string cannot), its UTF-16 code units.
type jsonString struct {
	text  string
	utf16 []uint16 // non-nil: the string has a lone surrogate; text is unused
	raw   []byte   // set instead of text by members when it does not decode keys (rawString)
}

func (p *jsonParser) jsString(s jsonString) goja.Value {
	if s.utf16 != nil {
		return goja.StringFromUTF16(s.utf16)
	}
	return p.vm.ToValue(s.text)
}

func (p *jsonParser) errorf(format string, args ...any) error {
	return fmt.Errorf("%s at offset %d", fmt.Sprintf(format, args...), p.pos)
}

// describe names what is at the current position, for errors.
func (p *jsonParser) describe() string {
	if p.pos >= len(p.data) {
		return "end of input"
	}
	r, _ := utf8.DecodeRune(p.data[p.pos:])
	return strconv.QuoteRune(r)
}

func (p *jsonParser) skipSpace() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *jsonParser) value(depth int) (goja.Value, error) {
	if p.pos >= len(p.data) {
		return nil, p.errorf("unexpected end of input")
	}
	switch c := p.data[p.pos]; {
	case c == '{':
		return p.object(depth + 1)
	case c == '[':
		return p.array(depth + 1)
	case c == '"':
		s, err := p.string()
		if err != nil {
			return nil, err
		}
		return p.jsString(s), nil
	case c == '-' || c >= '0' && c <= '9':
		return p.number()
	case p.literal("true"):
		return p.vm.ToValue(true), nil
	case p.literal("false"):
		return p.vm.ToValue(false), nil
	case p.literal("null"):
		return goja.Null(), nil
	}
	return nil, p.errorf("unexpected %s", p.describe())
}

// literal consumes word if the input continues with it.
func (p *jsonParser) literal(word string) bool {
	if len(p.data)-p.pos >= len(word) && string(p.data[p.pos:p.pos+len(word)]) == word {
		p.pos += len(word)
		return true
	}
	return false
}

func (p *jsonParser) object(depth int) (goja.Value, error) {
	obj := p.vm.NewObject()
	err := p.members(depth, true, func(key jsonString) error {
		v, err := p.value(depth)
		if err != nil {
			return err
		}
		switch {
		case key.utf16 != nil:
			_, err = p.setOwn(goja.Undefined(), obj, p.jsString(key), v)
			return err
		case key.text == "__proto__":
			// JSON.parse makes an own property; Set would change the prototype.
			return obj.DefineDataProperty(key.text, v, goja.FLAG_TRUE, goja.FLAG_TRUE, goja.FLAG_TRUE)
		}
		return obj.Set(key.text, v)
	})
	if err != nil {
		return nil, err
	}
	return obj, nil
}

func (p *jsonParser) array(depth int) (goja.Value, error) {
	var items []any
	err := p.members(depth, false, func(jsonString) error {
		v, err := p.value(depth)
		items = append(items, v)
		return err
	})
	if err != nil {
		return nil, err
	}
	return p.vm.NewArray(items...), nil
}

// members walks the object or array whose bracket is at p.pos, depth
// levels deep, calling each once a member, with the parser at the member's
// value: each must consume it. An object's keys are decoded and passed
// when decodeKeys is set, else only checked.
func (p *jsonParser) members(depth int, decodeKeys bool, each func(key jsonString) error) error {
	if depth > maxJSONDepth {
		return p.errorf("nested deeper than %d", maxJSONDepth)
	}
	open, closer := p.data[p.pos], byte(']')
	if open == '{' {
		closer = '}'
	}
	p.pos++
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == closer {
		p.pos++
		return nil
	}
	for {
		var key jsonString
		if open == '{' {
			if p.pos >= len(p.data) || p.data[p.pos] != '"' {
				return p.errorf("expected a string key, found %s", p.describe())
			}
			var err error
			if decodeKeys {
				key, err = p.string()
			} else {
				key.raw, err = p.rawString()
			}
			if err != nil {
				return err
			}
			p.skipSpace()
			if p.pos >= len(p.data) || p.data[p.pos] != ':' {
				return p.errorf("expected ':' after an object key, found %s", p.describe())
			}
			p.pos++
			p.skipSpace()
		}
		if err := each(key); err != nil {
			return err
		}
		if more, err := p.next(closer); !more {
			return err
		}
	}
}

// next steps over what follows an object member or array element: ','
// (more follows: true) or closer (the container ends: false). An error
// comes with false.
func (p *jsonParser) next(closer byte) (more bool, err error) {
	p.skipSpace()
	if p.pos >= len(p.data) {
		return false, p.errorf("unexpected end of input")
	}
	switch p.data[p.pos] {
	case ',':
		p.pos++
		p.skipSpace()
		return true, nil
	case closer:
		p.pos++
		return false, nil
	}
	return false, p.errorf("expected ',' or '%c', found %s", closer, p.describe())
}

// number parses a JSON number; integers that JavaScript holds exactly
// become integer values, the rest float64, as with JSON.parse.
func (p *jsonParser) number() (goja.Value, error) {
	raw, err := p.numberText()
	if err != nil {
		return nil, err
	}
	text := string(raw)
	integer := !strings.ContainsAny(text, ".eE")
	if integer && len(text) <= 16 { // |n| < 10^16: safe to try as an integer
		if n, err := strconv.ParseInt(text, 10, 64); err == nil && n >= -(1<<53) && n <= 1<<53 && text != "-0" {
			return p.vm.ToValue(n), nil
		}
	}
	// numberText checked the syntax, so the one error left is ErrRange,
	// where ParseFloat gives ±Inf as JSON.parse does (or 0 below the range).
	f, _ := strconv.ParseFloat(text, 64)
	return p.vm.ToValue(f), nil
}

// numberText consumes a JSON number and returns its text, a slice of the
// input (skipping a number allocates nothing).
func (p *jsonParser) numberText() ([]byte, error) {
	start := p.pos
	if p.data[p.pos] == '-' {
		p.pos++
	}
	digits := func() int {
		n := 0
		for p.pos < len(p.data) && p.data[p.pos] >= '0' && p.data[p.pos] <= '9' {
			p.pos++
			n++
		}
		return n
	}
	intStart := p.pos
	if n := digits(); n == 0 {
		return nil, p.errorf("expected a digit, found %s", p.describe())
	} else if n > 1 && p.data[intStart] == '0' {
		p.pos = intStart + 1
		return nil, p.errorf("unexpected %s after a leading zero", p.describe())
	}
	if p.pos < len(p.data) && p.data[p.pos] == '.' {
		p.pos++
		if digits() == 0 {
			return nil, p.errorf("expected a digit after '.', found %s", p.describe())
		}
	}
	if p.pos < len(p.data) && (p.data[p.pos] == 'e' || p.data[p.pos] == 'E') {
		p.pos++
		if p.pos < len(p.data) && (p.data[p.pos] == '+' || p.data[p.pos] == '-') {
			p.pos++
		}
		if digits() == 0 {
			return nil, p.errorf("expected a digit in the exponent, found %s", p.describe())
		}
	}
	return p.data[start:p.pos], nil
}

// string parses a JSON string at the current '"'. Invalid UTF-8 becomes
// U+FFFD; a lone surrogate escape is kept as JavaScript keeps it.
func (p *jsonParser) string() (jsonString, error) {
	p.pos++ // '"'
	start := p.pos
	// Fast path: no escapes, valid UTF-8.
	for p.pos < len(p.data) {
		c := p.data[p.pos]
		if c == '"' {
			s := p.data[start:p.pos]
			p.pos++
			if utf8.Valid(s) {
				return jsonString{text: string(s)}, nil
			}
			p.pos = start
			return p.slowString()
		}
		if c == '\\' || c < 0x20 {
			p.pos = start
			return p.slowString()
		}
		p.pos++
	}
	return jsonString{}, p.errorf("unterminated string")
}

// slowString decodes a string with escapes or invalid UTF-8 into p.buf,
// switching to UTF-16 code units at its first lone surrogate.
func (p *jsonParser) slowString() (jsonString, error) {
	b := p.buf[:0]
	var wide []uint16
	add := func(r rune) {
		if wide != nil {
			wide = utf16.AppendRune(wide, r)
		} else {
			b = utf8.AppendRune(b, r)
		}
	}
	for {
		if p.pos >= len(p.data) {
			return jsonString{}, p.errorf("unterminated string")
		}
		c := p.data[p.pos]
		switch {
		case c == '"':
			p.pos++
			p.buf = b
			if wide != nil {
				return jsonString{utf16: wide}, nil
			}
			return jsonString{text: string(b)}, nil
		case c < 0x20:
			return jsonString{}, p.errorf("control character %#02x in a string", c)
		case c == '\\':
			p.pos++
			if p.pos >= len(p.data) {
				return jsonString{}, p.errorf("unterminated string")
			}
			e := p.data[p.pos]
			p.pos++
			switch e {
			case '"', '\\', '/':
				add(rune(e))
			case 'b':
				add('\b')
			case 'f':
				add('\f')
			case 'n':
				add('\n')
			case 'r':
				add('\r')
			case 't':
				add('\t')
			case 'u':
				r, err := p.hex4()
				if err != nil {
					return jsonString{}, err
				}
				if !utf16.IsSurrogate(r) {
					add(r)
				} else if r2, ok := p.lowSurrogate(r); ok {
					add(utf16.DecodeRune(r, r2))
				} else {
					// A lone surrogate, which only UTF-16 can hold.
					if wide == nil {
						wide = utf16.Encode([]rune(string(b)))
					}
					wide = append(wide, uint16(r))
				}
			default:
				p.pos--
				return jsonString{}, p.errorf("bad escape \\%c", e)
			}
		default:
			r, size := utf8.DecodeRune(p.data[p.pos:])
			add(r) // invalid bytes become U+FFFD
			p.pos += size
		}
	}
}

func (p *jsonParser) hex4() (rune, error) {
	if len(p.data)-p.pos < 4 {
		return 0, p.errorf("short \\u escape")
	}
	n, err := strconv.ParseUint(string(p.data[p.pos:p.pos+4]), 16, 32)
	if err != nil {
		return 0, p.errorf("bad \\u escape")
	}
	p.pos += 4
	return rune(n), nil
}

// lowSurrogate consumes a "\uDC00"-style escape that pairs with high.
func (p *jsonParser) lowSurrogate(high rune) (rune, bool) {
	if high >= 0xdc00 || len(p.data)-p.pos < 6 || p.data[p.pos] != '\\' || p.data[p.pos+1] != 'u' {
		return 0, false
	}
	save := p.pos
	p.pos += 2
	low, err := p.hex4()
	if err != nil || low < 0xdc00 || low > 0xdfff {
		p.pos = save
		return 0, false
	}
	return low, true
}

// scanCommand checks that data is JSON and finds the string value of its
// top-level "command", building no JavaScript values: routing needs only
// the command, and a request that waits in a queue should hold bytes, not
// parsed objects. A payload that is JSON but not an object with a string
// command returns errNoCommand.
func scanCommand(data []byte) ([]byte, error) {
	p := jsonParser{data: data}
	p.skipSpace()
	command, err := p.scanTop()
	if err == nil {
		err = p.end()
	}
	if err != nil {
		return nil, err
	}
	if command == nil {
		return nil, errNoCommand
	}
	return command, nil
}

// errNoCommand: the payload is JSON without a string "command" at the top.
var errNoCommand = errors.New(`no string "command"`)

// scanTop skips the top-level value, returning the top-level object's
// "command" when it is a string (the last one, as JSON.parse keeps).
// Containers are counted as parseJSON counts them: the top one is level 1.
func (p *jsonParser) scanTop() ([]byte, error) {
	if p.pos >= len(p.data) || p.data[p.pos] != '{' {
		return nil, p.skip(1)
	}
	var command []byte
	err := p.members(1, false, func(key jsonString) error {
		if string(key.raw) != "command" { // no allocation: a comparison
			return p.skip(2)
		}
		command = nil
		if p.pos >= len(p.data) || p.data[p.pos] != '"' {
			return p.skip(2)
		}
		s, err := p.rawString()
		if err == nil && s != nil { // one with a lone surrogate names no rule
			command = s
		}
		return err
	})
	return command, err
}

// skip consumes one JSON value, checking its syntax; a container in it is
// depth levels deep.
func (p *jsonParser) skip(depth int) error {
	if p.pos >= len(p.data) {
		return p.errorf("unexpected end of input")
	}
	switch c := p.data[p.pos]; {
	case c == '{' || c == '[':
		return p.members(depth, false, func(jsonString) error { return p.skip(depth + 1) })
	case c == '"':
		return p.skipString()
	case c == '-' || c >= '0' && c <= '9':
		_, err := p.numberText()
		return err
	case p.literal("true"), p.literal("false"), p.literal("null"):
		return nil
	}
	return p.errorf("unexpected %s", p.describe())
}

// skipString consumes a string, checking its escapes.
func (p *jsonParser) skipString() error {
	_, err := p.rawString()
	return err
}

// rawString consumes a string like string, returning its decoded bytes
// without making a Go string: a slice of the input when it has no escapes
// (the common case, which allocates nothing), or nil when it holds a lone
// surrogate (it then equals no Go string).
func (p *jsonParser) rawString() ([]byte, error) {
	p.pos++ // '"'
	start := p.pos
	for p.pos < len(p.data) {
		c := p.data[p.pos]
		if c == '"' {
			if s := p.data[start:p.pos]; utf8.Valid(s) {
				p.pos++
				return s, nil
			}
			break
		}
		if c == '\\' || c < 0x20 {
			break
		}
		p.pos++
	}
	p.pos = start - 1
	s, err := p.string()
	if err != nil || s.utf16 != nil {
		return nil, err
	}
	return []byte(s.text), nil // with escapes: rare, and then it allocates
}
