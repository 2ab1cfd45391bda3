package vm

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestConsole(t *testing.T) {
	const m = "KUBEVS-VM-abc "
	tests := []struct {
		name  string
		lines []string
		want  []Event
	}{{
		name:  "boot, output, exit",
		lines: []string{"[    0.1] Linux version", m + "READY 7.28\r", "hello\r", "world", "", m + "EXIT 0"},
		want: []Event{
			{Kind: BootLine, Text: "[    0.1] Linux version"},
			{Kind: Ready, Text: "7.28"},
			{Kind: Output, Text: "hello"},
			{Kind: Output, Text: "world"},
			{Kind: Exit, Code: 0},
		},
	}, {
		name:  "output without final newline shares the line before the exit marker",
		lines: []string{m + "READY 1", "partial" + m + "EXIT 3"},
		want:  []Event{{Kind: Ready, Text: "1"}, {Kind: Output, Text: "partial"}, {Kind: Exit, Code: 3}},
	}, {
		name:  "blank lines inside the output are kept",
		lines: []string{m + "READY 1", "a", "", "", "b", "", m + "EXIT 1"},
		want: []Event{
			{Kind: Ready, Text: "1"},
			{Kind: Output, Text: "a"}, {Kind: Output}, {Kind: Output}, {Kind: Output, Text: "b"},
			{Kind: Exit, Code: 1},
		},
	}, {
		name:  "markers with another nonce are output",
		lines: []string{m + "READY 1", "KUBEVS-VM-xyz EXIT 0", "", m + "EXIT 255"},
		want:  []Event{{Kind: Ready, Text: "1"}, {Kind: Output, Text: "KUBEVS-VM-xyz EXIT 0"}, {Kind: Exit, Code: 255}},
	}, {
		name:  "a malformed exit marker is output",
		lines: []string{m + "READY 1", m + "EXIT soon", m + "EXIT 2"},
		want:  []Event{{Kind: Ready, Text: "1"}, {Kind: Output, Text: m + "EXIT soon"}, {Kind: Exit, Code: 2}},
	}, {
		name:  "setup failure",
		lines: []string{"modprobe: can't load ip_vs", m + "SETUP-FAILED modprobe ip_vs", "[ 9.9] reboot: Power down"},
		want: []Event{
			{Kind: BootLine, Text: "modprobe: can't load ip_vs"},
			{Kind: SetupFailed, Text: "modprobe ip_vs"},
			{Kind: BootLine, Text: "[ 9.9] reboot: Power down"},
		},
	}, {
		name:  "console after the exit is boot log",
		lines: []string{m + "READY 1", m + "EXIT 0", "[ 9.9] reboot: Power down"},
		want:  []Event{{Kind: Ready, Text: "1"}, {Kind: Exit}, {Kind: BootLine, Text: "[ 9.9] reboot: Power down"}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewConsole("abc")
			var got []Event
			for _, l := range tt.lines {
				got = append(got, c.Line(l)...)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}
