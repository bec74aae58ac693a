package wireutil

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// ErrLineTooLong is returned (wrapped) by LineReader.ReadLine and SSEReader.Next when a line or
// an event exceeds the reader's limit.
var ErrLineTooLong = errors.New("line too long")

// LineReader reads "\n"- or "\r\n"-terminated lines of any length up to a limit, for NDJSON and
// SSE streams whose lines (base64 images, long tool arguments) exceed bufio.Scanner's default.
// It reads incrementally: a line is returned as soon as it is complete.
type LineReader struct {
	r    *bufio.Reader
	max  int
	long []byte // scratch for lines longer than the reader's buffer
}

// NewLineReader returns a reader of lines of at most max bytes from r.
func NewLineReader(r io.Reader, max int) *LineReader {
	// 4 KiB holds any ordinary event; longer lines are gathered in long. Streams are many and
	// long-lived, so this buffer is per stream memory (bench/README.md, "Many streams").
	return &LineReader{r: bufio.NewReaderSize(r, 4<<10), max: max}
}

// ReadLine returns the next line without its line ending; the slice is valid until the next
// call. A last line without a line ending is returned before io.EOF. A line over the limit
// returns an error wrapping ErrLineTooLong; read errors are returned as they are.
func (l *LineReader) ReadLine() ([]byte, error) {
	line, err := l.r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		l.long = append(l.long[:0], line...)
		for errors.Is(err, bufio.ErrBufferFull) {
			if len(l.long) > l.max+1 { // +1: a "\r" still to be trimmed may end the buffer
				return nil, fmt.Errorf("%w: over %d bytes", ErrLineTooLong, l.max)
			}
			line, err = l.r.ReadSlice('\n')
			l.long = append(l.long, line...)
		}
		line = l.long
	}
	if err != nil && !(errors.Is(err, io.EOF) && len(line) > 0) {
		return nil, err
	}
	line = bytes.TrimSuffix(line, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	if len(line) > l.max {
		return nil, fmt.Errorf("%w: over %d bytes", ErrLineTooLong, l.max)
	}
	return line, nil
}
