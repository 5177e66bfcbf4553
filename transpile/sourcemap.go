package transpile

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
)

// mapPrefix starts the inline source map esbuild appends.
const mapPrefix = "//# sourceMappingURL=data:application/json;base64,"

// forGoja rewrites esbuild's output (code ending in an inline source map)
// for the way goja reads source maps:
//   - goja looks a position up with a 1-based column and reports the
//     column it finds as it is, where source maps count columns from 0, so
//     every generated and original column in the map is made one more;
//   - CommonJS loaders (goja_nodejs's require) put a function header in
//     front of the file's first line, so the code starts on a line of its
//     own and the map with an empty line.
func forGoja(code []byte) ([]byte, error) {
	i := bytes.LastIndex(code, []byte(mapPrefix))
	if i < 0 {
		return nil, fmt.Errorf("esbuild wrote no inline source map")
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(code[i+len(mapPrefix):])))
	if err != nil {
		return nil, fmt.Errorf("read esbuild's source map: %w", err)
	}
	var sm map[string]any
	if err := json.Unmarshal(raw, &sm); err != nil {
		return nil, fmt.Errorf("read esbuild's source map: %w", err)
	}
	mappings, _ := sm["mappings"].(string)
	shifted, err := shiftColumns(mappings)
	if err != nil {
		return nil, err
	}
	sm["mappings"] = ";" + shifted
	raw, err = json.Marshal(sm)
	if err != nil {
		return nil, fmt.Errorf("write source map: %w", err)
	}
	out := make([]byte, 0, len(code)+len(raw)/2)
	out = append(out, '\n')
	out = append(out, code[:i]...)
	out = append(out, mapPrefix...)
	out = base64.StdEncoding.AppendEncode(out, raw)
	return append(out, '\n'), nil
}

// shiftColumns adds one to the generated and the original column of
// every segment of a source map's mappings (version 3: lines split by ';',
// segments by ',', each segment base64 VLQ deltas of generated column,
// source, original line, original column and name).
func shiftColumns(mappings string) (string, error) {
	var in, out [5]int // running absolute values, as read and as written
	var b strings.Builder
	for li, line := range strings.Split(mappings, ";") {
		if li > 0 {
			b.WriteByte(';')
		}
		in[0], out[0] = 0, 0 // the generated column restarts on each line
		for si, seg := range strings.Split(line, ",") {
			if seg == "" {
				continue
			}
			fields, err := decodeVLQ(seg)
			if err != nil {
				return "", fmt.Errorf("source map segment %q: %w", seg, err)
			}
			if si > 0 {
				b.WriteByte(',')
			}
			for k, d := range fields {
				in[k] += d
				abs := in[k]
				if k == 0 || k == 3 {
					abs++
				}
				b.WriteString(encodeVLQ(abs - out[k]))
				out[k] = abs
			}
		}
	}
	return b.String(), nil
}

const vlqChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

func decodeVLQ(s string) ([]int, error) {
	var vals []int
	v, shift := 0, 0
	for i := 0; i < len(s); i++ {
		d := strings.IndexByte(vlqChars, s[i])
		if d < 0 {
			return nil, fmt.Errorf("bad character %q", s[i])
		}
		v |= (d & 31) << shift
		if d&32 != 0 {
			shift += 5
			continue
		}
		if v&1 != 0 {
			vals = append(vals, -(v >> 1))
		} else {
			vals = append(vals, v>>1)
		}
		v, shift = 0, 0
	}
	if shift != 0 {
		return nil, fmt.Errorf("truncated value")
	}
	return vals, nil
}

func encodeVLQ(n int) string {
	v := n << 1
	if n < 0 {
		v = (-n << 1) | 1
	}
	var b []byte
	for {
		d := v & 31
		v >>= 5
		if v > 0 {
			d |= 32
		}
		b = append(b, vlqChars[d])
		if v == 0 {
			return string(b)
		}
	}
}
