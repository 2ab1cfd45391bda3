package netfilter

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/kubevs/kubevs/proxier/ipset"
)

// Backend is the kernel interface the iptables tools drive.
type Backend string

// The two iptables backends.
const (
	BackendNFT    Backend = "nf_tables"
	BackendLegacy Backend = "legacy"
)

type tools struct{ save, restore string }

// Linux drives iptables-save and iptables-restore (ip6tables-* for IPv6): one iptables-save
// per table to read, and one `iptables-restore -w --noflush` per table that needs a change.
// Processes run in the network namespace of the calling thread. It is safe for concurrent use;
// calls are serialized.
//
// Rules are compared token by token with what iptables-save prints, also in the renderings
// printed.go knows ("--or-mark 0x4000" prints "--set-xmark 0x4000/0x4000"), so a new Linux
// adopts what the last one wrote. A rule written in another form still unknown is rewritten
// once; Linux then remembers what the kernel printed for it, so the next Ensure with the same
// ruleset changes nothing.
type Linux struct {
	backend Backend
	bins    map[Family]tools
	// timeout bounds each iptables-save and iptables-restore run (ToolTimeout).
	timeout time.Duration

	mu       sync.Mutex
	memo     map[string]written // family/table/id -> what was asked and what the kernel printed
	restores int                // iptables-restore runs (Runs)
	saves    int                // iptables-save runs, of one table or all (Runs)
	// gen reads the generation of the backend's rules (nf_tables only; nil for legacy);
	// snaps holds the tables the last reads found, at the generation they were read
	// (snapshot.go).
	gen   func() (uint32, error)
	snaps map[string]snapshot
	// held counts the HoldReads not released; heldGen stands for legacy's generation.
	held    int
	heldGen uint32
}

type written struct{ want, have []string }

// ToolTimeout bounds one run of iptables-save or iptables-restore. A tool that hangs (seen
// in the soak: a sync stuck in iptables-nft-save held the kernel lock, so nothing was
// programmed and the node API stopped answering) is killed, and the sync fails and is
// retried, instead of blocking every later sync for ever. iptables-restore -w waits for the
// xtables lock within this bound too. Far above a normal run (milliseconds; seconds in an
// emulated VM).
const ToolTimeout = 2 * time.Minute

var _ Interface = (*Linux)(nil)

// New detects the backend of the `iptables` found on PATH and uses the matching save and
// restore tools, so that kubevs writes where the node's other tools (kubelet, CNI plugins)
// write. The file it resolves to names the backend (multiCallBackend); anything else (a
// wrapper script, an older iptables) is asked: iptables --version prints "(nf_tables)" or
// "(legacy)".
func New() (*Linux, error) {
	if b := multiCallBackend(); b != "" {
		return NewBackend(b)
	}
	out, err := exec.Command("iptables", "--version").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("detect iptables backend: iptables --version: %w: %s", err, bytes.TrimSpace(out))
	}
	b := BackendLegacy // iptables before 1.8 prints no backend and is legacy
	if strings.Contains(string(out), "nf_tables") {
		b = BackendNFT
	}
	return NewBackend(b)
}

// multiCallBackend tells the backend of the `iptables` on PATH without starting a process
// (one more at every proxier start, 1-2 s under emulation): iptables 1.8 installs it as a
// link, through the distribution's alternatives, to the multi-call binary of one backend,
// xtables-nft-multi or xtables-legacy-multi, which serves only that backend. "" when it
// resolves to anything else.
func multiCallBackend() Backend {
	p, err := exec.LookPath("iptables")
	if err != nil {
		return ""
	}
	if p, err = filepath.EvalSymlinks(p); err != nil {
		return ""
	}
	switch filepath.Base(p) {
	case "xtables-nft-multi":
		return BackendNFT
	case "xtables-legacy-multi":
		return BackendLegacy
	}
	return ""
}

// NewBackend uses the given backend's tools: iptables-nft-save or iptables-legacy-save and so
// on, falling back to the unsuffixed names where the suffixed ones are not installed.
func NewBackend(b Backend) (*Linux, error) {
	suffix := map[Backend]string{BackendNFT: "-nft", BackendLegacy: "-legacy"}[b]
	if suffix == "" {
		return nil, fmt.Errorf("unknown iptables backend %q", b)
	}
	l := &Linux{backend: b, bins: map[Family]tools{}, memo: map[string]written{}, timeout: ToolTimeout,
		gen: generationOf(b), snaps: map[string]snapshot{}}
	for fam, prefix := range map[Family]string{ipset.IPv4: "iptables", ipset.IPv6: "ip6tables"} {
		var t tools
		for _, p := range []*string{&t.save, &t.restore} {
			verb := "-save"
			if p == &t.restore {
				verb = "-restore"
			}
			name := prefix + suffix + verb
			if _, err := exec.LookPath(name); err != nil {
				name = prefix + verb
				if _, err := exec.LookPath(name); err != nil {
					return nil, fmt.Errorf("find %s%s%s or %s: %w", prefix, suffix, verb, name, err)
				}
			}
			*p = name
		}
		l.bins[fam] = t
	}
	return l, nil
}

// Backend reports which backend Linux writes to.
func (l *Linux) Backend() Backend { return l.backend }

// Runs counts the processes a Linux started: iptables-save runs (of one table or of all)
// and iptables-restore runs. Each is a process start, which dominates the cost of a check
// under emulation (1-2 s each in a TCG guest).
type Runs struct{ Saves, Restores int }

// Runs reports the processes l started since it was made, for tests and benchmarks.
func (l *Linux) Runs() Runs {
	l.mu.Lock()
	defer l.mu.Unlock()
	return Runs{Saves: l.saves, Restores: l.restores}
}

func (l *Linux) tools(family Family) (tools, error) {
	t, ok := l.bins[family]
	if !ok {
		return t, fmt.Errorf("unknown family %q", family)
	}
	return t, nil
}

// save runs iptables-save for one table.
func (l *Linux) save(family Family, name string) (*table, error) {
	out, err := l.runSave(family, "-t", name)
	if err != nil {
		return nil, err
	}
	return parseSave(out, name)
}

// runSave runs iptables-save of family with args (none: every table that exists) and
// returns what it printed.
func (l *Linux) runSave(family Family, args ...string) (string, error) {
	t, err := l.tools(family)
	if err != nil {
		return "", err
	}
	l.saves++
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), l.timeout)
	defer cancel()
	cmd := l.command(ctx, t.save, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s: %w: %s", strings.Join(append([]string{t.save}, args...), " "), l.timedOut(ctx, err), bytes.TrimSpace(stderr.Bytes()))
	}
	return stdout.String(), nil
}

// restore runs one iptables-restore --noflush batch.
func (l *Linux) restore(family Family, lines []string) error {
	t, err := l.tools(family)
	if err != nil {
		return err
	}
	l.restores++
	var stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), l.timeout)
	defer cancel()
	cmd := l.command(ctx, t.restore, "-w", "--noflush")
	cmd.Stdin = strings.NewReader(strings.Join(lines, "\n") + "\n")
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s -w --noflush: %w: %s\ninput:\n%s", t.restore, l.timedOut(ctx, err),
			bytes.TrimSpace(stderr.Bytes()), strings.Join(lines, "\n"))
	}
	return nil
}

// command is the tool's command, killed when ctx ends; whatever it left holding its output
// (a child) gets a second more before Run returns.
func (l *Linux) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.WaitDelay = time.Second
	return cmd
}

// timedOut names the timeout when ctx ended the command.
func (l *Linux) timedOut(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("killed after %s: %w", l.timeout, err)
	}
	return err
}

// same compares the kernel's rules with want, with want as iptables-save prints it
// (printed.go), and with the memo of what the kernel printed after the last write. The memo
// only stands for a rendering of want: each rule prints as one line, so a kernel chain with
// another number of rules is never taken for one (see remember).
func (l *Linux) same(family Family, table string) sameFunc {
	return func(id string, want, have []string) bool {
		if sameRules(want, have) || samePrinted(family, want, have) {
			return true
		}
		m, ok := l.memo[string(family)+"/"+table+"/"+id]
		return ok && len(have) == len(want) && sameRules(m.want, want) && sameRules(m.have, have)
	}
}

// remember records what the kernel printed for each chain and jump of rs in t. The read
// after a write can see someone else's change made meanwhile (the soak flushed chains while
// the proxier repaired them): a chain printed with another number of rules than written is
// not a rendering of them, and remembering it would make that drift look repaired for ever.
func (l *Linux) remember(family Family, t *table, rs Ruleset) {
	key := func(id string) string { return string(family) + "/" + t.name + "/" + id }
	for _, c := range rs.Chains {
		if c.Table != t.name {
			continue
		}
		if have := t.rules[c.Name]; len(have) == len(c.Rules) {
			l.memo[key(c.Name)] = written{want: c.Rules, have: have}
		} else {
			delete(l.memo, key(c.Name))
		}
	}
	want := map[jumpKey][]string{}
	for _, j := range rs.Jumps {
		if j.Table == t.name {
			k := jumpKey{j.From, j.To}
			want[k] = append(want[k], jumpRule(j))
		}
	}
	have := existingJumps(t)
	for k, w := range want {
		if len(have[k]) == len(w) {
			l.memo[key(jumpID(k))] = written{want: w, have: have[k]}
		} else {
			delete(l.memo, key(jumpID(k)))
		}
	}
}

// Ensure makes the owned chains of family hold exactly rs: one iptables-save per table and
// one iptables-restore per table that needs a change. Tables are handled independently; the
// errors of each are joined.
func (l *Linux) Ensure(family Family, rs Ruleset) error {
	_, err := l.Repair(family, rs)
	return err
}

// Repair is Ensure that returns the tables it rewrote: one iptables-save per table (none for a
// table whose snapshot is current, see snapshot.go), an iptables-restore only for a table
// that differs from rs, and one iptables-save that reads back the tables it wrote (all of
// them in one run when there are several).
func (l *Linux) Repair(family Family, rs Ruleset) ([]string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var written []string
	touched, err := l.eachTable(family, rs, "ensure", func(name string, lines []string) (bool, error) {
		if err := l.write(family, name, lines); err != nil {
			return false, fmt.Errorf("write table %s: %w", name, err)
		}
		written = append(written, name)
		return true, nil
	})
	return touched, errors.Join(err, l.readBack(family, written, rs))
}

// readBack reads the tables just written (all tables in one iptables-save when they are
// several) and remembers what the kernel printed for rs.
func (l *Linux) readBack(family Family, names []string, rs Ruleset) error {
	var tables map[string]*table
	var err error
	switch len(names) {
	case 0:
		return nil
	case 1:
		var t *table
		if t, err = l.read(family, names[0]); err == nil {
			tables = map[string]*table{names[0]: t}
		}
	default:
		// One iptables-save prints every table: keep them all (snapshot.go).
		tables, err = l.readAll(family, everyTable())
	}
	for _, name := range names {
		if t, ok := tables[name]; ok {
			l.remember(family, t, rs)
		}
	}
	if err != nil {
		return fmt.Errorf("ensure %s rules: read back tables %s: %w", family, strings.Join(names, ", "), err)
	}
	return nil
}

// Verify reads each table once (one iptables-save) and reports those that Repair would
// rewrite; it runs no iptables-restore. With nf_tables, while nf_tables' generation has not
// moved since the last read of the family's tables (or moved only through kubevs's own
// writes), Verify runs no process at all: one netlink request per table (snapshot.go).
func (l *Linux) Verify(family Family, rs Ruleset) ([]string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.eachTable(family, rs, "verify", func(string, []string) (bool, error) { return true, nil })
}

// eachTable reads each table of family (its snapshot while current) and calls differs with
// the restore lines of each table that does not hold rs; it returns the tables differs
// reported (Repair: rewritten; Verify: differing). verb names the operation in errors. The
// caller holds l.mu.
func (l *Linux) eachTable(family Family, rs Ruleset, verb string, differs func(name string, lines []string) (bool, error)) ([]string, error) {
	if err := rs.Validate(); err != nil {
		return nil, fmt.Errorf("%s %s rules: %w", verb, family, err)
	}
	var errs []error
	var touched []string
	for _, name := range Tables() {
		cur, err := l.read(family, name)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %s rules: read table %s: %w", verb, family, name, err))
			continue
		}
		lines := plan(cur, rs, l.same(family, name))
		if lines == nil {
			continue
		}
		done, err := differs(name, lines)
		if done {
			touched = append(touched, name)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %s rules: %w", verb, family, err))
		}
	}
	return touched, errors.Join(errs...)
}

// Cleanup removes the jumps to owned chains and the owned chains of family.
func (l *Linux) Cleanup(family Family) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	var errs []error
	for _, name := range Tables() {
		cur, err := l.read(family, name)
		if err != nil {
			errs = append(errs, fmt.Errorf("clean up %s rules: read table %s: %w", family, name, err))
			continue
		}
		if lines := cleanupPlan(cur); lines != nil {
			if err := l.write(family, name, lines); err != nil {
				errs = append(errs, fmt.Errorf("clean up %s rules: table %s: %w", family, name, err))
			}
		}
	}
	for k := range l.memo {
		if strings.HasPrefix(k, string(family)+"/") {
			delete(l.memo, k)
		}
	}
	return errors.Join(errs...)
}

// Dump returns the owned chains and the jumps into them as the kernel holds them, read by
// one iptables-save of every table (a process start: 1-2 s in an emulated guest, where
// `kubevs status` ran one per table).
func (l *Linux) Dump(family Family) (Ruleset, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	tables, err := l.readAll(family, Tables())
	if err != nil {
		return Ruleset{}, fmt.Errorf("dump %s rules: %w", family, err)
	}
	var rs Ruleset
	for _, name := range Tables() {
		d := dumpTable(tables[name])
		rs.Chains = append(rs.Chains, d.Chains...)
		rs.Jumps = append(rs.Jumps, d.Jumps...)
	}
	return rs, nil
}
