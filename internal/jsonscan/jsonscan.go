// Package jsonscan is a strict JSON scanner for hand-written decoders of hot wire formats. It
// reads the common subset of JSON exactly and reports everything else (malformed input, but also
// escaped or upper-case object keys, lone surrogate escapes, invalid UTF-8, deep nesting) as not
// ok, so that a decoder can give up and let its general decoder (protojson, encoding/json) decide:
// a fast decoder built on it is then exact as long as what it accepts decodes the same way.
package jsonscan

import (
	"strconv"
	"unicode/utf8"
)

// MaxDepth bounds the nesting Skip follows (and decoders should follow); deeper input is not ok.
const MaxDepth = 64

// Scanner reads one JSON document from its buffer.
type Scanner struct {
	buf []byte
	pos int
}

func (d *Scanner) ws() {
	for d.pos < len(d.buf) {
		switch d.buf[d.pos] {
		case ' ', '\n', '\r', '\t':
			d.pos++
		default:
			return
		}
	}
}

// Peek skips whitespace and returns the next byte (0 at the end).
func (d *Scanner) Peek() byte {
	d.ws()
	if d.pos < len(d.buf) {
		return d.buf[d.pos]
	}
	return 0
}

// Eat consumes c if it is the next byte after whitespace.
func (d *Scanner) Eat(c byte) bool {
	if d.Peek() == c {
		d.pos++
		return true
	}
	return false
}

// Literal consumes the literal lit (true, false, null), which must end at a delimiter.
func (d *Scanner) Literal(lit string) bool {
	j := d.pos + len(lit)
	if j > len(d.buf) || string(d.buf[d.pos:j]) != lit || (j < len(d.buf) && isNotDelim(d.buf[j])) {
		return false
	}
	d.pos = j
	return true
}

func isNotDelim(c byte) bool {
	return c == '-' || c == '+' || c == '.' || c == '_' ||
		('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9')
}

// Null consumes a null value if one is next.
func (d *Scanner) Null() bool {
	if d.Peek() == 'n' {
		return d.Literal("null")
	}
	return false
}

// Key reads the next key of an object and its colon. first says whether this is the first key
// (the '{' is consumed by the caller). It returns done at the closing '}'. A key with an escape,
// upper case, non-ASCII or a leading '[' (extension syntax) is not ok: protojson might match it to
// a field by its JSON name, encoding/json by case folding.
func (d *Scanner) Key(first bool) (key []byte, done, ok bool) {
	c := d.Peek()
	if c == '}' {
		d.pos++
		return nil, true, true
	}
	if !first {
		if c != ',' {
			return nil, false, false
		}
		d.pos++
		c = d.Peek()
	}
	if c != '"' {
		return nil, false, false
	}
	start := d.pos + 1
	j := start
	for ; j < len(d.buf); j++ {
		c := d.buf[j]
		if c == '"' {
			break
		}
		if c < 0x20 || c == '\\' || c >= 0x80 || ('A' <= c && c <= 'Z') {
			return nil, false, false
		}
	}
	if j >= len(d.buf) || (j > start && d.buf[start] == '[') {
		return nil, false, false
	}
	d.pos = j + 1
	if !d.Eat(':') {
		return nil, false, false
	}
	return d.buf[start:j], false, true
}

// Str reads a JSON string value.
func (d *Scanner) Str() (string, bool) { return d.StrOr("") }

// StrOr reads a string like Str but returns prev itself, without allocating, when the text is
// the same (for values that repeat from document to document, such as a stream's id and model).
func (d *Scanner) StrOr(prev string) (string, bool) {
	if d.Peek() != '"' {
		return "", false
	}
	start := d.pos + 1
	for j := start; j < len(d.buf); j++ {
		c := d.buf[j]
		switch {
		case c == '"':
			d.pos = j + 1
			if string(d.buf[start:j]) == prev {
				return prev, true
			}
			return string(d.buf[start:j]), true
		case c == '\\' || c >= 0x80:
			return d.strSlow(start)
		case c < 0x20:
			return "", false
		}
	}
	return "", false
}

// strSlow decodes a string with escapes or non-ASCII text from start (after the quote), the way
// protojson does; lone or mismatched surrogate escapes and invalid UTF-8 fail.
func (d *Scanner) strSlow(start int) (string, bool) {
	out := make([]byte, 0, 32)
	j := start
	for j < len(d.buf) {
		c := d.buf[j]
		switch {
		case c == '"':
			d.pos = j + 1
			return string(out), true
		case c < 0x20:
			return "", false
		case c < 0x80 && c != '\\':
			out = append(out, c)
			j++
		case c >= 0x80:
			r, n := utf8.DecodeRune(d.buf[j:])
			if r == utf8.RuneError && n == 1 {
				return "", false
			}
			out = append(out, d.buf[j:j+n]...)
			j += n
		default: // backslash
			if j+1 >= len(d.buf) {
				return "", false
			}
			switch e := d.buf[j+1]; e {
			case '"', '\\', '/':
				out = append(out, e)
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				r, ok := hex4(d.buf, j+2)
				if !ok {
					return "", false
				}
				j += 6
				if r >= 0xD800 && r <= 0xDFFF {
					if r > 0xDBFF || j+1 >= len(d.buf) || d.buf[j] != '\\' || d.buf[j+1] != 'u' {
						return "", false
					}
					lo, ok := hex4(d.buf, j+2)
					if !ok || lo < 0xDC00 || lo > 0xDFFF {
						return "", false
					}
					r = 0x10000 + (r-0xD800)<<10 + (lo - 0xDC00)
					j += 6
				}
				out = utf8.AppendRune(out, r)
				continue
			default:
				return "", false
			}
			j += 2
		}
	}
	return "", false
}

func hex4(b []byte, at int) (rune, bool) {
	if at+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[at : at+4] {
		switch {
		case '0' <= c && c <= '9':
			r = r<<4 | rune(c-'0')
		case 'a' <= c && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case 'A' <= c && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

// Number reads a JSON number and reports whether it has no fraction or exponent.
func (d *Scanner) Number() (raw []byte, integer, ok bool) {
	d.ws()
	j := d.pos
	if j < len(d.buf) && d.buf[j] == '-' {
		j++
	}
	switch {
	case j < len(d.buf) && d.buf[j] == '0':
		j++
	case j < len(d.buf) && '1' <= d.buf[j] && d.buf[j] <= '9':
		for j < len(d.buf) && '0' <= d.buf[j] && d.buf[j] <= '9' {
			j++
		}
	default:
		return nil, false, false
	}
	integer = true
	if j < len(d.buf) && d.buf[j] == '.' {
		integer = false
		j++
		k := j
		for j < len(d.buf) && '0' <= d.buf[j] && d.buf[j] <= '9' {
			j++
		}
		if j == k {
			return nil, false, false
		}
	}
	if j < len(d.buf) && (d.buf[j] == 'e' || d.buf[j] == 'E') {
		integer = false
		j++
		if j < len(d.buf) && (d.buf[j] == '+' || d.buf[j] == '-') {
			j++
		}
		k := j
		for j < len(d.buf) && '0' <= d.buf[j] && d.buf[j] <= '9' {
			j++
		}
		if j == k {
			return nil, false, false
		}
	}
	if j < len(d.buf) && isNotDelim(d.buf[j]) {
		return nil, false, false
	}
	raw = d.buf[d.pos:j]
	d.pos = j
	return raw, integer, true
}

// Float64 reads a number as a float64 (out of range is not ok).
func (d *Scanner) Float64() (float64, bool) {
	raw, _, ok := d.Number()
	if !ok {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	return f, err == nil
}

// Int reads an integer of the given bit size written without fraction or exponent (protojson
// also takes 1.0, 1e2 and "1"; those are not ok).
func (d *Scanner) Int(bits int) (int64, bool) {
	raw, integer, ok := d.Number()
	if !ok || !integer {
		return 0, false
	}
	n, err := strconv.ParseInt(string(raw), 10, bits)
	return n, err == nil
}

// Int32 reads an int32 like Int.
func (d *Scanner) Int32() (int32, bool) {
	n, ok := d.Int(32)
	return int32(n), ok
}

// Bool reads true or false.
func (d *Scanner) Bool() (bool, bool) {
	switch d.Peek() {
	case 't':
		return true, d.Literal("true")
	case 'f':
		return false, d.Literal("false")
	}
	return false, false
}

// Skip consumes any JSON value (an unknown field's), as strictly as the rest. depth is the
// nesting of the value.
func (d *Scanner) Skip(depth int) bool {
	if depth > MaxDepth {
		return false
	}
	switch d.Peek() {
	case '"':
		_, ok := d.Str()
		return ok
	case '{':
		d.pos++
		for first := true; ; first = false {
			if d.Peek() == '}' {
				d.pos++
				return true
			}
			if !first && !d.Eat(',') {
				return false
			}
			if _, ok := d.Str(); !ok || !d.Eat(':') || !d.Skip(depth+1) {
				return false
			}
		}
	case '[':
		d.pos++
		for first := true; ; first = false {
			if d.Peek() == ']' {
				d.pos++
				return true
			}
			if !first && !d.Eat(',') {
				return false
			}
			if !d.Skip(depth + 1) {
				return false
			}
		}
	case 't':
		return d.Literal("true")
	case 'f':
		return d.Literal("false")
	case 'n':
		return d.Literal("null")
	default:
		_, _, ok := d.Number()
		return ok
	}
}

// Array runs elem for each element of an array.
func (d *Scanner) Array(elem func() bool) bool {
	if !d.Eat('[') {
		return false
	}
	for first := true; ; first = false {
		if d.Peek() == ']' {
			d.pos++
			return true
		}
		if !first && !d.Eat(',') {
			return false
		}
		if !elem() {
			return false
		}
	}
}

// Object runs fn for each key of an object; fn consumes the value.
func (d *Scanner) Object(fn func(key []byte) bool) bool {
	if !d.Eat('{') {
		return false
	}
	for first := true; ; first = false {
		key, done, ok := d.Key(first)
		if !ok {
			return false
		}
		if done {
			return true
		}
		if !fn(key) {
			return false
		}
	}
}

// End reports whether only whitespace is left.
func (d *Scanner) End() bool {
	d.ws()
	return d.pos == len(d.buf)
}

// New returns a scanner of b.
func New(b []byte) *Scanner { return &Scanner{buf: b} }

// Reset makes d scan b.
func (d *Scanner) Reset(b []byte) { d.buf, d.pos = b, 0 }

// Offset returns the read position.
func (d *Scanner) Offset() int { return d.pos }

// Seek moves the read position to off (from Offset).
func (d *Scanner) Seek(off int) { d.pos = off }

// Seen records which of up to 64 known keys of one object have been met, for decoders that
// decline an object repeating a key.
type Seen uint64

// First marks key n (0-63) as met and reports whether it was the first time.
func (s *Seen) First(n int) bool {
	bit := Seen(1) << n
	if *s&bit != 0 {
		return false
	}
	*s |= bit
	return true
}

// Member starts the value of known key n of an object: ok is false when the key is repeated;
// a null value is consumed and reported as isNull.
func (d *Scanner) Member(seen *Seen, n int) (isNull, ok bool) {
	if !seen.First(n) {
		return false, false
	}
	return d.Null(), true
}
