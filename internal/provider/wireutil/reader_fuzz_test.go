package wireutil

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"testing"
)

// chunkedReader returns data in short reads whose sizes cycle through sizes (each 1 to 64), the
// last one together with io.EOF, so readers see arbitrary split points.
type chunkedReader struct {
	data  []byte
	sizes []byte
	i     int
}

func (r *chunkedReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := 1 + len(r.data)
	if len(r.sizes) > 0 {
		n = 1 + int(r.sizes[r.i%len(r.sizes)]%64)
		r.i++
	}
	n = min(n, len(p), len(r.data))
	copy(p, r.data[:n])
	r.data = r.data[n:]
	if len(r.data) == 0 {
		return n, io.EOF
	}
	return n, nil
}

// fuzzBufSize is the smallest buffer bufio allows, so that lines longer than the reader's buffer
// (the ErrBufferFull path, 4 KiB in production) are reached by small inputs.
const fuzzBufSize = 16

func newSmallLineReader(r io.Reader, max int) *LineReader {
	return &LineReader{r: bufio.NewReaderSize(r, fuzzBufSize), max: max}
}

// refLines is the specification of LineReader: lines split at "\n", a trailing "\r" removed, the
// last line returned even without a line ending; reading stops at the first line over max.
func refLines(in []byte, max int) (lines []string, tooLong bool) {
	for len(in) > 0 {
		line, rest, found := bytes.Cut(in, []byte("\n"))
		if !found {
			rest = nil
		}
		in = rest
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) > max {
			return lines, true
		}
		lines = append(lines, string(line))
	}
	return lines, false
}

// lineLimit picks the line limit for a fuzz input: around the buffer size, where the boundary
// cases are, or small.
func lineLimit(sel uint8) int { return 1 + int(sel%40) }

// FuzzLineReader checks LineReader against refLines, for any chunking of the input and with the
// same answer for every chunking, and that a line over the limit does not grow memory unboundedly.
func FuzzLineReader(f *testing.F) {
	for _, s := range []string{"a\nb\r\n\nc", "abc", "\r\n\r\n", "x\r", "0123456789abcdef\r\n", "0123456789abcde\r\nz", "data: {}\n\n"} {
		f.Add([]byte(s), []byte{0, 3, 7}, uint8(15))
	}
	f.Fuzz(func(t *testing.T, in, sizes []byte, sel uint8) {
		max := lineLimit(sel)
		want, wantTooLong := refLines(in, max)
		for _, chunks := range [][]byte{nil, sizes} {
			l := newSmallLineReader(&chunkedReader{data: in, sizes: chunks}, max)
			var got []string
			var err error
			for range len(in) + 2 { // each line consumes at least one byte; then io.EOF
				var line []byte
				if line, err = l.ReadLine(); err != nil {
					break
				}
				got = append(got, string(line))
				if c := cap(l.long); c > 4*(max+fuzzBufSize) {
					t.Fatalf("scratch buffer grew to %d bytes for a limit of %d", c, max)
				}
			}
			if err == nil {
				t.Fatalf("no end after %d lines", len(got))
			}
			if !slices.Equal(got, want) {
				t.Fatalf("chunks %v, max %d: lines %q, want %q", chunks, max, got, want)
			}
			switch {
			case wantTooLong && !errors.Is(err, ErrLineTooLong):
				t.Fatalf("chunks %v, max %d: end %v, want ErrLineTooLong", chunks, max, err)
			case !wantTooLong && err != io.EOF:
				t.Fatalf("chunks %v, max %d: end %v, want io.EOF", chunks, max, err)
			}
		}
	})
}

// sseEvent is one event or the error that ended the reading, for comparisons.
type sseEvent struct {
	name, data string
	err        error
}

// refSSE is the specification of SSEReader over whole lines (see refLines): data lines joined by
// "\n", an event dispatched at a blank line or at the end of the input when it has data, the
// name of the last event line, comments and other fields ignored, and an event whose data would
// exceed max ending the reading with ErrLineTooLong.
func refSSE(in []byte, max int) []sseEvent {
	lines, tooLong := refLines(in, max)
	var out []sseEvent
	var data []byte
	name, hasData := "", false
	dispatch := func() {
		if hasData {
			out = append(out, sseEvent{name: name, data: string(data)})
		}
		data, name, hasData = data[:0], "", false
	}
	for _, line := range lines {
		if line == "" {
			dispatch()
			continue
		}
		field, value, _ := bytes.Cut([]byte(line), []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch {
		case len(field) == 0: // a comment
		case string(field) == "data":
			if hasData {
				data = append(data, '\n')
			}
			if len(data)+len(value) > max {
				return append(out, sseEvent{err: ErrLineTooLong})
			}
			data, hasData = append(data, value...), true
		case string(field) == "event":
			name = string(value)
		}
	}
	if tooLong {
		return append(out, sseEvent{err: ErrLineTooLong})
	}
	dispatch()
	return append(out, sseEvent{err: io.EOF})
}

func readSSE(t *testing.T, r *SSEReader, limit int) []sseEvent {
	var out []sseEvent
	for range limit {
		data, name, err := r.Next()
		if err != nil {
			if errors.Is(err, ErrLineTooLong) {
				err = ErrLineTooLong
			}
			return append(out, sseEvent{err: err})
		}
		if len(data) > r.max {
			t.Fatalf("event of %d bytes, limit %d", len(data), r.max)
		}
		out = append(out, sseEvent{name: name, data: string(data)})
	}
	t.Fatalf("no end after %d events", limit)
	return nil
}

// FuzzSSEReader checks SSEReader against refSSE for any chunking of the input, and with the
// production buffer size.
func FuzzSSEReader(f *testing.F) {
	for _, s := range []string{
		"event: ping\ndata: {}\n\ndata: a\n\n", ": hi\nid: 1\nretry: 5\ndata:x\n\n", "data: a\r\ndata: b\r\n\r\n",
		"event: x\n\ndata: y\n\n", "data: last", "data\n\ndata:\n\n", "event: e\ndata: 0123456789abcdef0123\n\n",
		"data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\ndata: [DONE]\n\n",
	} {
		f.Add([]byte(s), []byte{1, 5, 2}, uint8(30))
	}
	f.Fuzz(func(t *testing.T, in, sizes []byte, sel uint8) {
		max := lineLimit(sel)
		want := refSSE(in, max)
		readers := map[string]*SSEReader{
			"production buffer": NewSSEReader(bytes.NewReader(in), max),
			"small buffer":      {lines: newSmallLineReader(bytes.NewReader(in), max), max: max},
			"small, chunked":    {lines: newSmallLineReader(&chunkedReader{data: in, sizes: sizes}, max), max: max},
		}
		for name, r := range readers {
			got := readSSE(t, r, len(in)+2)
			if !slices.Equal(got, want) {
				t.Fatalf("%s, max %d:\n got %s\nwant %s", name, max, fmtEvents(got), fmtEvents(want))
			}
		}
	})
}

func fmtEvents(evs []sseEvent) string {
	var b bytes.Buffer
	for _, e := range evs {
		if e.err != nil {
			fmt.Fprintf(&b, "[%v]", e.err)
		} else {
			fmt.Fprintf(&b, "[%q %q]", e.name, e.data)
		}
	}
	return b.String()
}
