package netfilter

// Reads that start no process. Each iptables-save is a process start, 1-2 s in an emulated
// guest, and the proxier's Start read the same tables twice (kube-proxy's check, then the
// rules' check), and a check that followed kubevs's own write read them again.
//
// So Linux keeps the tables its reads found (snapshots), each with nf_tables' generation read
// just before the iptables-save that printed it. A later read of that family and table takes
// the snapshot while the generation has not moved: no commit, by kubevs or anyone else, can
// have changed any table since. A commit racing the save makes the snapshot older than what
// it holds, never newer, so it only costs a read.
//
// kubevs's own iptables-restore commits once: when the generation just after it is exactly
// one past the one just before it, nobody else committed meanwhile, so every other table is
// as its snapshot says and the snapshots move to the new generation; the table written is
// dropped (Repair reads it back, which snapshots it again). Any other outcome (a failure,
// another commit in between) drops every snapshot. The largest snapshot is the nat table
// kube-proxy's iptables mode left on a node taken over, until kubevs's write that removes its
// chains drops it.
//
// Legacy iptables has no generation: nothing is kept and every read runs iptables-save,
// except while its caller holds the reads (HoldReads, for the few steps of one Start): a
// count of kubevs's own writes then stands for the generation, so a read takes what the last
// read or write of kubevs found. A change by someone else inside the hold is found by the
// first check after it.

import (
	"errors"
	"fmt"
	"sync"
)

// snapshot is a table as iptables-save printed it when nf_tables' generation was gen.
type snapshot struct {
	gen uint32
	t   *table
}

func snapKey(family Family, name string) string { return string(family) + "/" + name }

// ReadHolder is implemented by a netfilter adapter whose reads can be shared while held.
type ReadHolder interface {
	// HoldReads makes the reads until release take what the last read of a table, or
	// kubevs's last write to it, found, where the backend cannot tell by itself whether
	// anything changed (legacy iptables; nf_tables' generation tells, held or not). Hold
	// only across a few steps that read the same tables (Start): a change by someone else
	// meanwhile is found by the first check after release. Holds nest.
	HoldReads() (release func())
}

var _ ReadHolder = (*Linux)(nil)

// HoldReads implements ReadHolder.
func (l *Linux) HoldReads() (release func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.held == 0 {
		l.heldGen++ // no snapshot from before the hold matches
	}
	l.held++
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			if l.held--; l.held == 0 && l.gen == nil {
				clear(l.snaps)
			}
		})
	}
}

// generation reads nf_tables' generation, or while reads are held on legacy iptables the
// count of kubevs's writes; ok is false when there is none or it cannot be read.
func (l *Linux) generation() (gen uint32, ok bool) {
	if l.gen == nil {
		return l.heldGen, l.held > 0
	}
	g, err := l.gen()
	return g, err == nil
}

// read returns one table of family: its snapshot while the generation has not moved, else
// what one iptables-save prints. The table returned is shared: callers only read it.
func (l *Linux) read(family Family, name string) (*table, error) {
	g, ok := l.generation()
	if s, hit := l.snaps[snapKey(family, name)]; ok && hit && s.gen == g {
		return s.t, nil
	}
	t, err := l.save(family, name)
	l.keep(family, name, t, g, ok && err == nil)
	return t, err
}

// keep records t as the snapshot of family's table name at generation g when current says
// the generation was read and t was; otherwise it forgets that table's snapshot.
func (l *Linux) keep(family Family, name string, t *table, g uint32, current bool) {
	if current {
		l.snaps[snapKey(family, name)] = snapshot{gen: g, t: t}
	} else {
		delete(l.snaps, snapKey(family, name))
	}
}

// readAll returns the named tables of family: their snapshots when every one is current,
// else what one iptables-save of every table prints (which creates no table; a table it
// does not print is empty, as a table with empty built-in chains is to every reader here).
// A table that cannot be parsed is left out of tables, and its error joined in err.
func (l *Linux) readAll(family Family, names []string) (tables map[string]*table, err error) {
	g, ok := l.generation()
	tables = map[string]*table{}
	for _, name := range names {
		if s, hit := l.snaps[snapKey(family, name)]; ok && hit && s.gen == g {
			tables[name] = s.t
		}
	}
	if len(tables) == len(names) {
		return tables, nil
	}
	out, err := l.runSave(family)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, name := range names {
		t, err := parseSave(out, name)
		l.keep(family, name, t, g, ok && err == nil)
		if err != nil {
			errs = append(errs, fmt.Errorf("table %s: %w", name, err))
			continue
		}
		tables[name] = t
	}
	return tables, errors.Join(errs...)
}

// write runs one iptables-restore --noflush batch that changes table name of family, and
// keeps the snapshots it cannot have changed (see the note at the top).
func (l *Linux) write(family Family, name string, lines []string) error {
	before, ok := l.generation()
	err := l.restore(family, lines)
	if err == nil && l.gen == nil {
		l.heldGen++ // legacy: kubevs's one commit
	}
	after, okAfter := l.generation()
	delete(l.snaps, snapKey(family, name))
	if err != nil || !ok || !okAfter || after != before+1 {
		clear(l.snaps)
		return err
	}
	for k, s := range l.snaps {
		if s.gen != before {
			delete(l.snaps, k)
			continue
		}
		s.gen = after
		l.snaps[k] = s
	}
	return nil
}
