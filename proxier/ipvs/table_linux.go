package ipvs

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// tablePath is the table of the calling thread's network namespace: /proc/net follows the
// process's first thread, which a test locked into another namespace is not.
const tablePath = "/proc/thread-self/net/ip_vs"

// tableFile reads /proc/net/ip_vs of the namespace it was opened in (a seq_file keeps the
// namespace of its opener), from the start each time, into one buffer reused across reads.
// It is not safe for concurrent use (linuxIPVS holds its lock around it).
type tableFile struct {
	f   *os.File
	buf []byte
}

func openTable() (*tableFile, error) {
	f, err := os.Open(tablePath)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", tablePath, err)
	}
	return &tableFile{f: f}, nil
}

// read returns the whole text, valid until the next read.
func (t *tableFile) read() ([]byte, error) {
	if _, err := t.f.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("rewind %s: %w", tablePath, err)
	}
	if cap(t.buf) == 0 {
		t.buf = make([]byte, 0, 256<<10)
	}
	b := t.buf[:0]
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := t.f.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", tablePath, err)
		}
	}
	t.buf = b
	return b, nil
}

func (t *tableFile) close() { _ = t.f.Close() }

var _ TableReader = (*linuxIPVS)(nil)

// RealServerTable reads /proc/net/ip_vs once: the real servers of every virtual server it
// printed whole (table.go). It holds only the table's lock: writes go on beside it.
func (l *linuxIPVS) RealServerTable() (map[Key][]RealServer, error) {
	l.tableMu.Lock()
	defer l.tableMu.Unlock()
	if l.table == nil {
		return nil, errors.New("read the IPVS table: closed")
	}
	text, err := l.table.read()
	if err != nil {
		return nil, err
	}
	return ParseTable(text)
}
