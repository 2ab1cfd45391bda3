package vm

import (
	"strconv"
	"strings"
)

// EventKind tells what a console line means.
type EventKind int

// The kinds of console events.
const (
	// BootLine is console output before the command started (kernel and /init messages).
	BootLine EventKind = iota
	// Ready says the guest is set up and the command starts; Text holds the guest uptime.
	Ready
	// Output is one line the command printed.
	Output
	// Exit says the command ended; Code holds its exit code.
	Exit
	// SetupFailed says /init could not set the guest up; Text names the failed step.
	SetupFailed
)

// Event is one meaningful piece of console output.
type Event struct {
	Kind EventKind
	Text string
	Code int
}

// Console turns the guest's serial console, line by line, into events. It recognises only
// marker lines that carry the run's nonce, so a command cannot fake them by accident. Not
// safe for concurrent use.
type Console struct {
	marker  string
	ready   bool
	done    bool
	pending bool // a blank output line is held back: /init prints one before EXIT
}

// NewConsole returns a parser for a guest booted with kubevs.nonce=nonce.
func NewConsole(nonce string) *Console { return &Console{marker: "KUBEVS-VM-" + nonce + " "} }

// Line parses one console line (without its newline; a trailing CR is dropped).
func (c *Console) Line(line string) []Event {
	line = strings.TrimSuffix(line, "\r")
	i := strings.Index(line, c.marker)
	if i < 0 {
		return c.text(line)
	}
	word, arg, _ := strings.Cut(strings.TrimSpace(line[i+len(c.marker):]), " ")
	code, err := strconv.Atoi(arg)
	if word != "READY" && word != "SETUP-FAILED" && (word != "EXIT" || err != nil) {
		return c.text(line)
	}
	var evs []Event
	if prefix := line[:i]; prefix != "" {
		evs = c.text(prefix)
	}
	switch word {
	case "READY":
		c.ready = true
		return append(evs, Event{Kind: Ready, Text: arg})
	case "EXIT":
		c.pending, c.done = false, true
		return append(evs, Event{Kind: Exit, Code: code})
	default:
		c.done = true
		return append(evs, Event{Kind: SetupFailed, Text: arg})
	}
}

// text classifies a line that is not a marker.
func (c *Console) text(line string) []Event {
	if !c.ready || c.done {
		return []Event{{Kind: BootLine, Text: line}}
	}
	var evs []Event
	if c.pending {
		evs = append(evs, Event{Kind: Output})
		c.pending = false
	}
	if line == "" {
		c.pending = true
		return evs
	}
	return append(evs, Event{Kind: Output, Text: line})
}
