package demo

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// answers returns a fetchFunc that plays the given answers in order ("!" fails), then the
// last one forever.
func answers(seq ...string) fetchFunc {
	i := 0
	return func(context.Context) (string, error) {
		a := seq[min(i, len(seq)-1)]
		i++
		if a == "!" {
			return "", errors.New("connection refused")
		}
		return a, nil
	}
}

func TestProbe(t *testing.T) {
	three := []string{"web-0", "web-1", "web-2"}
	tests := []struct {
		name    string
		fetch   fetchFunc
		exp     expectation
		wantErr string
		// wantLines are the progress lines, with times cut off.
		wantLines []string
	}{
		{
			name:      "all answer after a failure",
			fetch:     answers("!", "web-1", "web-0", "web-1", "web-2"),
			exp:       expectation{want: three},
			wantLines: []string{"not yet", "answered by web-1", "answered by web-0", "answered by web-2"},
		},
		{
			name:      "an unexpected backend fails at once",
			fetch:     answers("web-0", "other"),
			exp:       expectation{want: three},
			wantErr:   `answered by "other"`,
			wantLines: []string{"answered by web-0"},
		},
		{
			name:      "hairpin: others may answer until the pod itself does",
			fetch:     answers("web-1", "web-2", "web-0"),
			exp:       expectation{want: []string{"web-0"}, othersOK: true},
			wantLines: []string{"answered by web-1", "answered by web-2", "answered by web-0"},
		},
		{
			name:      "one never answers: timeout names who did and the last error",
			fetch:     answers("web-0", "web-1", "!"),
			exp:       expectation{want: three},
			wantErr:   "[web-0 web-1] answered of [web-0 web-1 web-2]; last error: connection refused",
			wantLines: []string{"answered by web-0", "answered by web-1", "not yet"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out strings.Builder
			err := probe(context.Background(), &out, tt.fetch, tt.exp, 300*time.Millisecond, time.Hour)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
			}
			var got []string
			for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
				l = strings.TrimSpace(l)
				if i := strings.Index(l, " ("); i >= 0 {
					l = strings.TrimSpace(l[:i])
				}
				got = append(got, l)
			}
			if diff := cmp.Diff(tt.wantLines, got); diff != "" {
				t.Errorf("progress lines (-want +got):\n%s\nfull output:\n%s", diff, out.String())
			}
		})
	}
}

func TestIndentWriter(t *testing.T) {
	var out strings.Builder
	iw := &indentWriter{w: &out, prefix: "| "}
	for _, chunk := range []string{"a\nb", "c\n\nd"} {
		if _, err := iw.Write([]byte(chunk)); err != nil {
			t.Fatal(err)
		}
	}
	iw.flush()
	if diff := cmp.Diff("| a\n| bc\n| \n| d\n", out.String()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestRunRefusesOutsideTheVM(t *testing.T) {
	t.Setenv("KUBEVS_IN_VM", "")
	err := Run(context.Background(), Config{}, &strings.Builder{})
	if err == nil || !strings.Contains(err.Error(), "only in the test VM") {
		t.Fatalf("Run outside the VM: %v, want a refusal", err)
	}
}

func TestRunCommandShowsOutputAndNamesTheLastLineOnFailure(t *testing.T) {
	tests := []struct {
		name, script, wantErr, wantOut string
	}{
		{"success", "echo one; echo two >&2", "", "         | one\n         | two\n"},
		{"failure", "echo working; echo 'cannot read binary' >&2; exit 3", "sh: exit status 3 (last output: cannot read binary)", "         | working\n         | cannot read binary\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out strings.Builder
			err := runCommand(context.Background(), &out, "sh", "-c", tt.script)
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
			}
			if diff := cmp.Diff(tt.wantErr, gotErr); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantOut, out.String()); diff != "" {
				t.Errorf("output (-want +got):\n%s", diff)
			}
		})
	}
}
