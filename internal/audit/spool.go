package audit

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Fsync policies (SpoolConfig.Fsync).
const (
	// FsyncAlways syncs every append before the writer goes on: nothing spooled is lost to a
	// crash of the machine, at the price of one fsync per batch.
	FsyncAlways = "always"
	// FsyncInterval syncs every FsyncInterval: a crash of the machine (not of the process) loses
	// at most the records of the last interval.
	FsyncInterval = "interval"
	// FsyncNever leaves writing back to the operating system: a crash of the process loses
	// nothing, a crash of the machine what the kernel had not written yet.
	FsyncNever = "never"
)

// Defaults of SpoolConfig.
const (
	DefaultSpoolMaxBytes      = 1 << 30
	DefaultSpoolFsyncInterval = 100 * time.Millisecond
)

// SpoolConfig configures the on-disk spool that keeps records while the sink is slow or down.
type SpoolConfig struct {
	// Dir holds the spool's files; it is created (mode 0700). One process uses a directory.
	Dir string `yaml:"dir"`
	// MaxBytes bounds the spool's files (default 1 GiB); beyond it the policy of the writer's
	// OnSpoolFull applies. -1: no spool.
	MaxBytes int64 `yaml:"max_bytes"`
	// Fsync is "always", "interval" (default) or "never" (the Fsync* constants).
	Fsync string `yaml:"fsync"`
	// FsyncInterval is the interval of the "interval" policy (default 100ms).
	FsyncInterval time.Duration `yaml:"fsync_interval"`
}

// ErrSpoolFull is returned by Spool.Append for records beyond the spool's bound.
var ErrSpoolFull = errors.New("audit spool full")

// On disk, a spool is a directory of segment files, appended to in order and removed once
// every record in them is stored, and a cursor file:
//
//	NNNNNNNNNNNNNNNNNNNN.seg  "SYSPOOL1", then frames: length (4 bytes), CRC-32C of the payload
//	                          (4 bytes), payload: version 2, flags (1 byte: bit 0 is
//	                          UsageEstimated), the record's fields as appendFields encodes
//	                          them, its body (length and bytes); version 1 frames (a spool
//	                          written before flags existed) have no flags byte and are read too
//	cursor                    segment id (8 bytes), offset (8 bytes), CRC-32C of both (4 bytes):
//	                          where the first record not yet stored starts
//	lock                      held (flock) while a process uses the directory
//
// Integers are big-endian. Opening a spool drops segments before the cursor and truncates a
// segment at its first frame that is cut short or fails its CRC (a write torn by a crash).
const (
	segMagic      = "SYSPOOL1"
	segSuffix     = ".seg"
	frameHeader   = 8
	frameVersion  = 2
	maxFrameBytes = 1 << 30
	cursorSize    = 20
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// Spool is a bounded, append-only queue of records on disk, read oldest first. It survives
// restarts: records appended and not committed are read again after OpenSpool. Methods are
// safe for concurrent use; Read and Commit are meant for one reader.
type Spool struct {
	dir    string
	max    int64
	segMax int64
	fsync  string
	log    *slog.Logger

	mu      sync.Mutex
	lock    *os.File
	cursor  *os.File
	segs    []*segment // oldest first; the last one is appended to
	readOff int64      // offset of the first unread frame in segs[0]
	records int64      // frames from readOff on
	size    int64      // bytes of every segment file
	nextID  uint64
	dirty   bool // written since the last sync (interval policy)
	closed  bool

	stop, stopped chan struct{}
}

type segment struct {
	id   uint64
	f    *os.File
	size int64
}

// OpenSpool opens (creating) the spool in c.Dir and recovers what a previous process left in it.
func OpenSpool(c SpoolConfig, log *slog.Logger) (*Spool, error) {
	if log == nil {
		log = slog.Default()
	}
	s := &Spool{dir: c.Dir, max: c.MaxBytes, fsync: c.Fsync, log: log}
	if s.max <= 0 {
		s.max = DefaultSpoolMaxBytes
	}
	if s.fsync == "" {
		s.fsync = FsyncInterval
	}
	if s.fsync != FsyncAlways && s.fsync != FsyncInterval && s.fsync != FsyncNever {
		return nil, fmt.Errorf("audit.OpenSpool: unknown fsync policy %q", s.fsync)
	}
	// Segments of an eighth of the bound: the space a consumed segment holds until the reader
	// leaves it is at most that.
	s.segMax = min(max(s.max/8, 4<<10), 64<<20)
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return nil, fmt.Errorf("audit.OpenSpool: %w", err)
	}
	if err := s.open(); err != nil {
		_ = s.closeFiles()
		return nil, fmt.Errorf("audit.OpenSpool %s: %w", s.dir, err)
	}
	if s.fsync == FsyncInterval {
		iv := c.FsyncInterval
		if iv <= 0 {
			iv = DefaultSpoolFsyncInterval
		}
		s.stop, s.stopped = make(chan struct{}), make(chan struct{})
		go s.syncEvery(iv)
	}
	return s, nil
}

func (s *Spool) open() error {
	var err error
	if s.lock, err = os.OpenFile(filepath.Join(s.dir, "lock"), os.O_RDWR|os.O_CREATE, 0o600); err != nil {
		return err
	}
	if err := lockFile(s.lock); err != nil {
		return fmt.Errorf("the spool is in use by another process: %w", err)
	}
	if s.cursor, err = os.OpenFile(filepath.Join(s.dir, "cursor"), os.O_RDWR|os.O_CREATE, 0o600); err != nil {
		return err
	}
	curID, curOff := s.readCursor()
	ids, err := s.segmentIDs()
	if err != nil {
		return err
	}
	s.nextID = curID + 1
	for _, id := range ids {
		s.nextID = max(s.nextID, id+1)
		if id < curID { // consumed; its removal did not happen or was not synced
			if err := os.Remove(s.segPath(id)); err != nil {
				return err
			}
			continue
		}
		f, err := os.OpenFile(s.segPath(id), os.O_RDWR, 0o600)
		if err != nil {
			return err
		}
		seg := &segment{id: id, f: f}
		s.segs = append(s.segs, seg)
		start := int64(len(segMagic))
		if id == curID {
			start = max(start, curOff)
		}
		n, err := s.scan(seg, start)
		if err != nil {
			return err
		}
		if len(s.segs) == 1 {
			s.readOff = min(start, seg.size)
		}
		s.records += n
		s.size += seg.size
	}
	if s.records == 0 {
		return s.reset()
	}
	return nil
}

// scan checks seg's frames from start, truncates it after the last good one, and returns
// how many there are.
func (s *Spool) scan(seg *segment, start int64) (int64, error) {
	fi, err := seg.f.Stat()
	if err != nil {
		return 0, err
	}
	end := fi.Size()
	magic := make([]byte, len(segMagic))
	if _, err := seg.f.ReadAt(magic, 0); err != nil || string(magic) != segMagic {
		// Cut short at creation (or not ours): nothing in it can be read.
		s.log.Warn("audit spool: segment without header, emptied", "file", seg.f.Name(), "bytes", end)
		if err := seg.f.Truncate(0); err != nil {
			return 0, err
		}
		if _, err := seg.f.WriteAt([]byte(segMagic), 0); err != nil {
			return 0, err
		}
		seg.size = int64(len(segMagic))
		return 0, nil
	}
	var n int64
	off := min(start, end)
	for off < end {
		_, next, err := readFrame(seg.f, off, end)
		if err != nil {
			break
		}
		off, n = next, n+1
	}
	if off < end {
		s.log.Warn("audit spool: torn or corrupt tail truncated", "file", seg.f.Name(), "offset", off, "bytes", end-off)
		if err := seg.f.Truncate(off); err != nil {
			return 0, err
		}
	}
	seg.size = off
	return n, nil
}

// readFrame reads the frame at off (not beyond end) and returns its payload and the offset of
// the next frame.
func readFrame(f io.ReaderAt, off, end int64) ([]byte, int64, error) {
	var h [frameHeader]byte
	if end-off < frameHeader {
		return nil, off, io.ErrUnexpectedEOF
	}
	if _, err := f.ReadAt(h[:], off); err != nil {
		return nil, off, err
	}
	n := int64(binary.BigEndian.Uint32(h[:4]))
	if n == 0 || n > maxFrameBytes || end-off-frameHeader < n {
		return nil, off, io.ErrUnexpectedEOF
	}
	p := make([]byte, n)
	if _, err := f.ReadAt(p, off+frameHeader); err != nil {
		return nil, off, err
	}
	if crc32.Checksum(p, crcTable) != binary.BigEndian.Uint32(h[4:]) {
		return nil, off, errors.New("audit spool: frame checksum mismatch")
	}
	return p, off + frameHeader + n, nil
}

func (s *Spool) segPath(id uint64) string {
	return filepath.Join(s.dir, fmt.Sprintf("%020d%s", id, segSuffix))
}

func (s *Spool) segmentIDs() ([]uint64, error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, err
	}
	var ids []uint64
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), segSuffix)
		if !ok {
			continue
		}
		if id, err := strconv.ParseUint(name, 10, 64); err == nil {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

func (s *Spool) readCursor() (uint64, int64) {
	var b [cursorSize]byte
	if _, err := s.cursor.ReadAt(b[:], 0); err != nil || crc32.Checksum(b[:16], crcTable) != binary.BigEndian.Uint32(b[16:]) {
		return 0, 0 // none yet, or torn: read every segment from its start
	}
	return binary.BigEndian.Uint64(b[:8]), int64(binary.BigEndian.Uint64(b[8:16]))
}

// writeCursor records (id, off) as the read position. Called with mu held.
func (s *Spool) writeCursor(id uint64, off int64) error {
	var b [cursorSize]byte
	binary.BigEndian.PutUint64(b[:8], id)
	binary.BigEndian.PutUint64(b[8:16], uint64(off))
	binary.BigEndian.PutUint32(b[16:], crc32.Checksum(b[:16], crcTable))
	if _, err := s.cursor.WriteAt(b[:], 0); err != nil {
		return err
	}
	return s.synced(s.cursor)
}

// synced applies the fsync policy to f after a write. Called with mu held.
func (s *Spool) synced(f *os.File) error {
	switch s.fsync {
	case FsyncAlways:
		return f.Sync()
	case FsyncInterval:
		s.dirty = true
	}
	return nil
}

// Append adds recs, in order, and returns how many it added: fewer than len(recs) with
// ErrSpoolFull when the rest would pass the bound, or with another error when writing failed.
func (s *Spool) Append(recs []*Record) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, errors.New("audit spool: closed")
	}
	done, queued := 0, 0
	var buf []byte
	flush := func() error {
		if queued == 0 {
			return nil
		}
		if err := s.write(buf); err != nil {
			return err
		}
		done, s.records, buf, queued = done+queued, s.records+int64(queued), buf[:0], 0
		return nil
	}
	var err error
	for _, r := range recs {
		fr := encodeFrame(r)
		if s.size+int64(len(buf)+len(fr)) > s.max {
			err = ErrSpoolFull
			break
		}
		if len(s.segs) == 0 || (s.last().size+int64(len(buf)) > int64(len(segMagic)) && s.last().size+int64(len(buf)+len(fr)) > s.segMax) {
			if err = flush(); err != nil {
				break
			}
			if err = s.rotate(); err != nil {
				break
			}
		}
		buf = append(buf, fr...)
		queued++
	}
	if ferr := flush(); err == nil {
		err = ferr
	}
	if done > 0 {
		if serr := s.synced(s.last().f); err == nil {
			err = serr
		}
	}
	return done, err
}

func (s *Spool) last() *segment { return s.segs[len(s.segs)-1] }

// write appends buf to the last segment. Called with mu held.
func (s *Spool) write(buf []byte) error {
	seg := s.last()
	if _, err := seg.f.WriteAt(buf, seg.size); err != nil {
		_ = seg.f.Truncate(seg.size) // no half frame stays behind
		return err
	}
	seg.size += int64(len(buf))
	s.size += int64(len(buf))
	return nil
}

// rotate starts a new segment. Called with mu held.
func (s *Spool) rotate() error {
	if len(s.segs) > 0 && s.fsync != FsyncNever {
		if err := s.last().f.Sync(); err != nil {
			return err
		}
	}
	id := s.nextID
	f, err := os.OpenFile(s.segPath(id), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt([]byte(segMagic), 0); err != nil {
		_ = f.Close()
		_ = os.Remove(f.Name())
		return err
	}
	if s.fsync != FsyncNever {
		if err := errors.Join(f.Sync(), syncDir(s.dir)); err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
			return err
		}
	}
	s.nextID++
	if len(s.segs) == 0 {
		s.readOff = int64(len(segMagic))
	}
	s.segs = append(s.segs, &segment{id: id, f: f, size: int64(len(segMagic))})
	s.size += int64(len(segMagic))
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// encodeFrame returns r's frame: header and payload.
func encodeFrame(r *Record) []byte {
	b := make([]byte, frameHeader, frameHeader+2+256+len(r.Body))
	var flags byte
	if r.UsageEstimated {
		flags |= frameUsageEstimated
	}
	b = append(b, frameVersion, flags)
	b = r.appendFields(b)
	b = appendString(b, string(r.Body))
	binary.BigEndian.PutUint32(b[:4], uint32(len(b)-frameHeader))
	binary.BigEndian.PutUint32(b[4:8], crc32.Checksum(b[frameHeader:], crcTable))
	return b
}

// frameUsageEstimated is the flags bit of Record.UsageEstimated.
const frameUsageEstimated = 1

func decodeFrame(p []byte) (*Record, error) {
	var flags byte
	switch {
	case len(p) >= 2 && p[0] == frameVersion:
		flags, p = p[1], p[2:]
	case len(p) >= 1 && p[0] == 1:
		p = p[1:]
	default:
		return nil, fmt.Errorf("audit spool: unknown frame version")
	}
	d := &fieldReader{b: p}
	r := &Record{UsageEstimated: flags&frameUsageEstimated != 0}
	d.readFields(r)
	if body := d.bytes(); body != nil {
		r.Body = append([]byte(nil), body...)
	}
	if d.err != nil || len(d.b) != 0 {
		return nil, errFields
	}
	return r, nil
}

// Read returns up to n of the oldest records, without removing them (Commit does).
func (s *Spool) Read(n int) ([]*Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*Record
	i, off := 0, s.readOff
	for len(out) < n {
		p, ni, noff, err := s.next(i, off)
		if err != nil || p == nil {
			return out, err
		}
		r, err := decodeFrame(p)
		if err != nil {
			return out, fmt.Errorf("audit spool %s at %d: %w", s.segs[ni].f.Name(), off, err)
		}
		out = append(out, r)
		i, off = ni, noff
	}
	return out, nil
}

// next reads the frame at offset off of segment i, or at the start of a later one when off is
// at the end of segment i. It returns the payload (nil at the end of the spool), the segment it
// was in and the offset after it. Called with mu held.
func (s *Spool) next(i int, off int64) (p []byte, seg int, after int64, err error) {
	for ; i < len(s.segs); i, off = i+1, int64(len(segMagic)) {
		if sg := s.segs[i]; off < sg.size {
			p, after, err = readFrame(sg.f, off, sg.size)
			if err != nil {
				err = fmt.Errorf("audit spool %s at %d: %w", sg.f.Name(), off, err)
			}
			return p, i, after, err
		}
	}
	return nil, i, off, nil
}

// Commit removes the n oldest records (read with Read and stored), and every segment that
// holds no record any more.
func (s *Spool) Commit(n int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	i, off := 0, s.readOff
	for range n {
		p, ni, noff, err := s.next(i, off)
		if err != nil {
			return err
		}
		if p == nil {
			break
		}
		i, off = ni, noff
		s.records--
	}
	if s.records <= 0 {
		return s.reset()
	}
	// The cursor first: a crash before the removals leaves segments OpenSpool removes.
	gone := s.segs[:i]
	s.segs, s.readOff = s.segs[i:], off
	return errors.Join(s.writeCursor(s.segs[0].id, off), s.remove(gone))
}

// reset removes every segment once nothing is left to read. Called with mu held.
func (s *Spool) reset() error {
	if len(s.segs) == 0 {
		return nil
	}
	last := s.last()
	if err := s.writeCursor(last.id, last.size); err != nil {
		return err
	}
	gone := s.segs
	s.segs, s.readOff, s.records = nil, 0, 0
	return s.remove(gone)
}

// remove closes and deletes segs. Called with mu held.
func (s *Spool) remove(segs []*segment) error {
	var errs []error
	for _, seg := range segs {
		s.size -= seg.size
		errs = append(errs, seg.f.Close(), os.Remove(seg.f.Name()))
	}
	return errors.Join(errs...)
}

// Len returns the number of records in the spool.
func (s *Spool) Len() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.records
}

// Size returns the bytes the spool's segment files take, what SpoolConfig.MaxBytes bounds.
func (s *Spool) Size() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.size
}

// syncEvery applies the interval policy until Close.
func (s *Spool) syncEvery(d time.Duration) {
	defer close(s.stopped)
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			if err := s.Sync(); err != nil {
				s.log.Error("audit spool: sync", "err", err)
			}
		}
	}
}

// Sync writes the spool's files through to the disk.
func (s *Spool) Sync() error { return s.sync(false) }

// sync syncs the files written since the last sync (every file when force).
func (s *Spool) sync(force bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || (!force && !s.dirty) {
		return nil
	}
	s.dirty = false
	var errs []error
	if len(s.segs) > 0 {
		errs = append(errs, s.last().f.Sync())
	}
	return errors.Join(append(errs, s.cursor.Sync())...)
}

// Close syncs and closes the spool; what it holds is read again after the next OpenSpool.
func (s *Spool) Close() error {
	if s.stop != nil {
		select {
		case <-s.stop:
		default:
			close(s.stop)
		}
		<-s.stopped
	}
	var err error
	if s.fsync != FsyncNever {
		err = s.sync(true)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return errors.Join(err, s.closeFiles())
}

// closeFiles closes every open file and releases the directory.
func (s *Spool) closeFiles() error {
	var errs []error
	for _, seg := range s.segs {
		errs = append(errs, seg.f.Close())
	}
	s.segs = nil
	if s.cursor != nil {
		errs = append(errs, s.cursor.Close())
		s.cursor = nil
	}
	if s.lock != nil {
		errs = append(errs, s.lock.Close()) // releases the flock
		s.lock = nil
	}
	return errors.Join(errs...)
}
