package reconcile

// Drain deadlines survive a restart. A real server at weight 0 is all the kernel says of a
// drain; its deadline lives only in the Reconciler. Were it re-armed at each start, a
// proxier in a restart loop would drain for ever. So the deadlines are written to
// Options.DrainFile (one small JSON file, replaced atomically) whenever they change, and a
// restarted Reconciler that adopts a weight-0 real server gives it the deadline recorded
// for it: the remaining time, or none (deleted by the next FinishDrains or Resync) when it
// passed. A real server without a record gets a full DrainTimeout, as before.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"k8s.io/klog/v2"

	"github.com/kubevs/kubevs/install/atomicfile"
	"github.com/kubevs/kubevs/proxier/ipvs"
)

// drainFileVersion is the format of DrainFile; a file of another version is ignored.
const drainFileVersion = 1

// drainFile is the JSON of Options.DrainFile.
type drainFile struct {
	Version int           `json:"version"`
	Drains  []drainRecord `json:"drains"`
}

// drainRecord is one draining real server and its deadline.
type drainRecord struct {
	Protocol   ipvs.Protocol  `json:"protocol"`
	Address    netip.Addr     `json:"address"`
	Port       uint16         `json:"port"`
	RealServer netip.AddrPort `json:"realServer"`
	Deadline   time.Time      `json:"deadline"`
}

// readDrainRecord reads the deadlines a previous run recorded (once; Start calls it).
// They serve the real servers the first Resync adopts at weight 0; Resync drops the rest.
func (r *Reconciler) readDrainRecord(ctx context.Context) {
	if r.drainsRead {
		return
	}
	r.drainsRead = true
	rec, err := readDrains(r.opts.DrainFile)
	if err != nil {
		klog.FromContext(ctx).Error(err, "Cannot read the recorded drain deadlines; adopted drains get a full period", "file", r.opts.DrainFile)
	}
	r.restored, r.savedDrains = rec, maps.Clone(rec)
}

// drainDeadline returns the deadline of a real server that starts draining now: the one a
// previous run recorded for it, else now plus DrainTimeout.
func (r *Reconciler) drainDeadline(ctx context.Context, dk drainKey) time.Time {
	if d, ok := r.restored[dk]; ok {
		delete(r.restored, dk)
		klog.FromContext(ctx).V(2).Info("Drain deadline recorded before a restart", "virtualServer", dk.vs, "realServer", dk.rs, "deadline", d)
		return d
	}
	return r.opts.Now().Add(r.opts.DrainTimeout)
}

// saveDrains writes the drain deadlines to DrainFile when they changed since the last
// write. A failed write is logged and tried again at the next call: the kernel is right,
// only a restart would lose the remaining time.
func (r *Reconciler) saveDrains(ctx context.Context) {
	if r.opts.DrainFile == "" || maps.Equal(r.m.draining, r.savedDrains) {
		return
	}
	if err := writeDrains(r.opts.DrainFile, r.m.draining); err != nil {
		klog.FromContext(ctx).Error(err, "Cannot record the drain deadlines; a restart would give them a full period", "file", r.opts.DrainFile)
		return
	}
	r.savedDrains = maps.Clone(r.m.draining)
}

// readDrains reads the deadlines of path; a missing file or empty path is no record.
func readDrains(path string) (map[drainKey]time.Time, error) {
	out := map[drainKey]time.Time{}
	if path == "" {
		return out, nil
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return out, fmt.Errorf("read drain deadlines: %w", err)
	}
	var f drainFile
	if err := json.Unmarshal(data, &f); err != nil {
		return out, fmt.Errorf("decode drain deadlines %s: %w", path, err)
	}
	if f.Version != drainFileVersion {
		return out, fmt.Errorf("drain deadlines %s: version %d, want %d", path, f.Version, drainFileVersion)
	}
	for _, d := range f.Drains {
		k := ipvs.Key{Protocol: d.Protocol, Address: d.Address, Port: d.Port}
		out[drainKey{vs: k, rs: d.RealServer}] = d.Deadline
	}
	return out, nil
}

// writeDrains replaces path with the deadlines of draining, in a stable order.
func writeDrains(path string, draining map[drainKey]time.Time) error {
	f := drainFile{Version: drainFileVersion, Drains: make([]drainRecord, 0, len(draining))}
	for dk, d := range draining {
		f.Drains = append(f.Drains, drainRecord{Protocol: dk.vs.Protocol, Address: dk.vs.Address, Port: dk.vs.Port, RealServer: dk.rs, Deadline: d.UTC()})
	}
	slices.SortFunc(f.Drains, func(a, b drainRecord) int {
		if c := strings.Compare(string(a.Protocol), string(b.Protocol)); c != 0 {
			return c
		}
		if c := a.Address.Compare(b.Address); c != 0 {
			return c
		}
		if a.Port != b.Port {
			return int(a.Port) - int(b.Port)
		}
		return a.RealServer.Compare(b.RealServer)
	})
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("encode drain deadlines: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create the directory of %s: %w", path, err)
	}
	if err := atomicfile.WriteFile(path, append(data, '\n'), atomicfile.Options{Mode: 0o600}); err != nil {
		return fmt.Errorf("write drain deadlines: %w", err)
	}
	return nil
}
