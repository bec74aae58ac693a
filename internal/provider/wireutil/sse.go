package wireutil

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

// SSEReader reads Server-Sent Events incrementally, one event per Next call.
type SSEReader struct {
	lines *LineReader
	max   int
	data  []byte // the current event's data, reused across events
}

// NewSSEReader returns a reader of events of at most max bytes of data from r.
func NewSSEReader(r io.Reader, max int) *SSEReader {
	return &SSEReader{lines: NewLineReader(r, max), max: max}
}

// Next reads lines up to the blank line that ends an event and returns its data (data lines
// joined by "\n"; the slice is valid until the next call) and its event name ("" when unnamed).
// Comments, id and retry lines and events without data are skipped. At the end of the body a
// pending event is returned first, then io.EOF. Oversized events return an error wrapping
// ErrLineTooLong; read errors are returned as they are.
func (s *SSEReader) Next() (data []byte, event string, err error) {
	s.data = s.data[:0]
	hasData := false
	for {
		line, err := s.lines.ReadLine()
		if err != nil {
			if errors.Is(err, io.EOF) && hasData {
				return s.data, event, nil
			}
			return nil, "", err
		}
		if len(line) == 0 {
			if hasData {
				return s.data, event, nil
			}
			event = "" // an event without data is dropped
			continue
		}
		if line[0] == ':' {
			continue
		}
		field, value := line, []byte(nil)
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			field, value = line[:i], line[i+1:]
			if len(value) > 0 && value[0] == ' ' {
				value = value[1:]
			}
		}
		switch string(field) {
		case "data":
			if hasData {
				s.data = append(s.data, '\n')
			}
			if len(s.data)+len(value) > s.max {
				return nil, "", fmt.Errorf("%w: event over %d bytes", ErrLineTooLong, s.max)
			}
			s.data = append(s.data, value...)
			hasData = true
		case "event":
			event = string(value)
		}
	}
}
