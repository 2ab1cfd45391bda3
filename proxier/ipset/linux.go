//go:build linux

package ipset

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"

	"golang.org/x/sys/unix"
)

// DefaultMaxElem is the capacity kubevs gives its hash sets. ipset's default (65536) is too
// small for KUBE-CLUSTER-IP in a large cluster; a hash set grows on demand, so the cap costs
// nothing until it is used.
const DefaultMaxElem = 1 << 20

// Linux is the kernel's set table over netlink, in the network namespace of the calling
// thread. It is safe for concurrent use.
//
// Set comments: ipset has no comment on a set itself, so a set created with a Comment gets the
// comment extension and every member Linux adds to it carries that text, which `ipset list`
// prints beside each member. For a set it did not create (adopted after a restart), Linux
// learns the text from an existing member when Entries lists it.
type Linux struct {
	mu        sync.Mutex
	sets      map[string]setInfo // what Linux knows of a set's type; dropped on any doubt
	revisions map[string]uint8   // "type/family" -> newest revision the kernel offers
}

type setInfo struct {
	Set
	comments bool // the set has the comment extension
}

var _ Interface = (*Linux)(nil)

// New returns the netlink implementation.
func New() *Linux {
	return &Linux{sets: map[string]setInfo{}, revisions: map[string]uint8{}}
}

func nfproto(s Set) uint8 {
	switch {
	case s.Type == BitmapPort:
		return unix.AF_UNSPEC
	case s.Family == IPv6:
		return nfprotoIPv6
	default:
		return nfprotoIPv4
	}
}

// Sets lists every set's name, sorted.
func (l *Linux) Sets() ([]string, error) {
	var body attrs
	body.putBE32(attrFlags, flagListSetName)
	msgs, err := execute(request(cmdList, flagsDump, body))
	if err != nil {
		return nil, fmt.Errorf("list sets: %w", err)
	}
	var names []string
	for _, m := range msgs {
		err := parseAttrs(m, func(typ uint16, v []byte) error {
			if typ == attrSetName {
				names = append(names, cString(v))
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("list sets: %w", err)
		}
	}
	slices.Sort(names)
	return slices.Compact(names), nil
}

// revision asks the kernel for the newest revision of a set type.
func (l *Linux) revision(s Set) (uint8, error) {
	key := string(s.Type) + "/" + string(s.Family)
	l.mu.Lock()
	rev, ok := l.revisions[key]
	l.mu.Unlock()
	if ok {
		return rev, nil
	}
	var body attrs
	body.putString(attrTypeName, string(s.Type))
	body.putU8(attrFamily, nfproto(s))
	msgs, err := execute(request(cmdType, unix.NLM_F_REQUEST, body))
	if err != nil {
		return 0, fmt.Errorf("query kernel for set type %s: %w", s.Type, err)
	}
	for _, m := range msgs {
		_ = parseAttrs(m, func(typ uint16, v []byte) error {
			if typ == attrRevision && len(v) == 1 {
				rev, ok = v[0], true
			}
			return nil
		})
	}
	if !ok {
		return 0, fmt.Errorf("query kernel for set type %s: no revision in the reply", s.Type)
	}
	l.mu.Lock()
	l.revisions[key] = rev
	l.mu.Unlock()
	return rev, nil
}

// CreateSet creates s; ErrExist if any set of that name exists.
func (l *Linux) CreateSet(s Set) error {
	if err := s.Validate(); err != nil {
		return fmt.Errorf("create set %s: %w", s.Name, err)
	}
	rev, err := l.revision(s)
	if err != nil {
		return fmt.Errorf("create set %s: %w", s.Name, err)
	}
	var body attrs
	body.putString(attrSetName, s.Name)
	body.putString(attrTypeName, string(s.Type))
	body.putU8(attrRevision, rev)
	body.putU8(attrFamily, nfproto(s))
	data := body.nest(attrData)
	if s.Type == BitmapPort {
		body.putBE16(attrPort, s.PortFrom)
		body.putBE16(attrPortTo, s.PortTo)
	} else {
		body.putBE32(attrMaxElem, DefaultMaxElem)
	}
	if s.Comment != "" {
		body.putBE32(attrCadtFlags, flagWithComment)
	}
	body.end(data)
	if _, err := execute(request(cmdCreate, flagsDo|unix.NLM_F_CREATE|unix.NLM_F_EXCL, body)); err != nil {
		return fmt.Errorf("create set %s (%s): %w", s.Name, s.Type, err)
	}
	l.mu.Lock()
	l.sets[s.Name] = setInfo{Set: s, comments: s.Comment != ""}
	l.mu.Unlock()
	return nil
}

// DestroySet destroys one set; ErrNotFound if absent, ErrInUse if a rule references it.
func (l *Linux) DestroySet(name string) error {
	if name == "" {
		// An empty name would destroy every set in the namespace.
		return fmt.Errorf("destroy set: empty name")
	}
	l.forget(name)
	var body attrs
	body.putString(attrSetName, name)
	// NLM_F_EXCL: without it the kernel treats a missing set as success (ipset -exist).
	if _, err := execute(request(cmdDestroy, flagsDo|unix.NLM_F_EXCL, body)); err != nil {
		return fmt.Errorf("destroy set %s: %w", name, err)
	}
	return nil
}

func (l *Linux) forget(name string) {
	l.mu.Lock()
	delete(l.sets, name)
	l.mu.Unlock()
}

// Entries lists a set's members in canonical form, sorted.
func (l *Linux) Entries(name string) ([]Entry, error) {
	info, entries, err := l.list(name, false)
	if err != nil {
		return nil, fmt.Errorf("list set %s: %w", name, err)
	}
	l.mu.Lock()
	if old, ok := l.sets[name]; ok && info.Comment == "" && old.Type == info.Type {
		info.Comment = old.Comment
	}
	l.sets[name] = info
	l.mu.Unlock()
	return entries, nil
}

// Counts returns the member counts the kernel keeps in the sets' headers, in one dump of
// every set's header.
func (l *Linux) Counts() (map[string]int, error) {
	var body attrs
	body.putBE32(attrFlags, flagListHeader)
	msgs, err := execute(request(cmdList, flagsDump, body))
	if err != nil {
		return nil, fmt.Errorf("count members of the sets: %w", err)
	}
	out := map[string]int{}
	for _, m := range msgs {
		name, n := "", -1
		err := parseAttrs(m, func(typ uint16, v []byte) error {
			switch typ {
			case attrSetName:
				name = cString(v)
			case attrData:
				return parseAttrs(v, func(typ uint16, v []byte) error {
					if typ == attrElements && len(v) == 4 {
						n = int(binary.BigEndian.Uint32(v))
					}
					return nil
				})
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("count members of the sets: %w", err)
		}
		if name == "" {
			continue
		}
		if n < 0 {
			return nil, fmt.Errorf("count members of set %s: the kernel's header holds no count", name)
		}
		out[name] = n
	}
	return out, nil
}

// list dumps one set: its header and, unless headerOnly, its members.
func (l *Linux) list(name string, headerOnly bool) (info setInfo, entries []Entry, err error) {
	if name == "" {
		return info, nil, fmt.Errorf("empty set name: %w", ErrNotFound)
	}
	var body attrs
	body.putString(attrSetName, name)
	if headerOnly {
		body.putBE32(attrFlags, flagListHeader)
	}
	msgs, err := execute(request(cmdList, flagsDump, body))
	if err != nil {
		return info, nil, err
	}
	info.Name = name
	for _, m := range msgs {
		err := parseAttrs(m, func(typ uint16, v []byte) error {
			switch typ {
			case attrTypeName:
				info.Type = Type(cString(v))
			case attrFamily:
				if len(v) == 1 && v[0] == nfprotoIPv6 {
					info.Family = IPv6
				} else if len(v) == 1 && v[0] == nfprotoIPv4 {
					info.Family = IPv4
				}
			case attrData:
				return parseAttrs(v, func(typ uint16, v []byte) error {
					switch {
					case typ == attrCadtFlags && len(v) == 4 && v[3]&flagWithComment != 0:
						info.comments = true
					case typ == attrPort && len(v) == 2:
						info.PortFrom = binary.BigEndian.Uint16(v)
					case typ == attrPortTo && len(v) == 2:
						info.PortTo = binary.BigEndian.Uint16(v)
					}
					return nil
				})
			case attrADT:
				return parseAttrs(v, func(typ uint16, v []byte) error {
					m, comment, err := parseMember(v)
					if err != nil {
						return err
					}
					if comment != "" && info.Comment == "" {
						info.Comment = comment
					}
					entries = append(entries, m.entry())
					return nil
				})
			}
			return nil
		})
		if err != nil {
			return info, nil, err
		}
	}
	slices.Sort(entries)
	return info, entries, nil
}

// info returns what is known of a set, asking the kernel for its header when needed.
func (l *Linux) info(name string) (setInfo, error) {
	l.mu.Lock()
	info, ok := l.sets[name]
	l.mu.Unlock()
	if ok {
		return info, nil
	}
	info, _, err := l.list(name, true)
	if err != nil {
		return info, err
	}
	l.mu.Lock()
	l.sets[name] = info
	l.mu.Unlock()
	return info, nil
}

// AddEntries adds members in batches of many members per message; members already present
// are not an error (the request goes without NLM_F_EXCL, which is ipset's -exist). Entries
// that do not fit the set are reported; the others are still added.
func (l *Linux) AddEntries(name string, entries ...Entry) error {
	return l.modify(cmdAdd, name, entries)
}

// DeleteEntries removes members in batches; members already absent are not an error.
func (l *Linux) DeleteEntries(name string, entries ...Entry) error {
	return l.modify(cmdDel, name, entries)
}

func (l *Linux) modify(cmd int, name string, entries []Entry) error {
	verb := map[int]string{cmdAdd: "add", cmdDel: "delete"}[cmd]
	if len(entries) == 0 {
		return nil
	}
	info, err := l.info(name)
	if err != nil {
		return fmt.Errorf("%s %d entries of set %s: %w", verb, len(entries), name, err)
	}
	comment := ""
	if cmd == cmdAdd && info.comments {
		comment = info.Comment
	}
	var errs []error
	var adt attrs
	send := func() error {
		if len(adt) == 0 {
			return nil
		}
		var body attrs
		body.putString(attrSetName, name)
		body.putBE32(attrLineNo, 0) // the kernel wants a line number with a batch (ADT)
		n := body.nest(attrADT)
		body = append(body, adt...)
		body.end(n)
		adt = adt[:0]
		_, err := execute(request(cmd, flagsDo, body))
		return err
	}
	var one attrs
	for _, e := range entries {
		m, err := parseEntry(info.Set, e)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s entry of set %s: %w", verb, name, err))
			continue
		}
		one = one[:0]
		one.putMember(m, comment)
		if len(adt)+len(one) > maxADTLength {
			if err := send(); err != nil {
				l.forget(name)
				return errors.Join(append(errs, fmt.Errorf("%s entries of set %s: %w", verb, name, err))...)
			}
		}
		adt = append(adt, one...)
	}
	if err := send(); err != nil {
		l.forget(name)
		errs = append(errs, fmt.Errorf("%s entries of set %s: %w", verb, name, err))
	}
	return errors.Join(errs...)
}
