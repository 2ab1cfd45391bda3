package nodeapi

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzRegister posts arbitrary bodies to /v1/register, as a broken or hostile plugin could.
// The answer is 204 or 400, never a 5xx or a panic; a 400 stores nothing; a 204 stores exactly
// the decoded registration, and a store reopened on the same directory (a proxier restart)
// loads it back unchanged, skipping nothing.
func FuzzRegister(f *testing.F) {
	f.Add([]byte(`{"containerID":"c1","ifName":"eth0","ips":["10.0.0.1","fd00::1"],"podNamespace":"ns","podName":"p","podUID":"u","netns":"/var/run/netns/x","hostIfName":"veth1"}`))
	f.Add([]byte(`{"containerID":"c1","ifName":"eth0","ips":["fe80::1%eth0"]}`))
	f.Add([]byte(`{"containerID":"c1","ifName":"eth0","ips":[""]}`))
	f.Add([]byte(`{"containerID":"c1","ifName":"eth0"} trailing`))
	f.Add([]byte(`{"containerID":"..","ifName":"."}`))
	f.Add([]byte(`{"containerID":"c","ifName":"eth0","podName":"\xff"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		dir := t.TempDir()
		store, err := NewStore(dir)
		if err != nil {
			t.Fatal(err)
		}
		h := NewServer("/unused", store, nil).Handler()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", "/v1/register", bytes.NewReader(body)))
		switch rec.Code {
		case 400:
			if n := len(store.List()); n != 0 {
				t.Fatalf("a refused body left %d registrations", n)
			}
			var e ErrorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == "" {
				t.Fatalf("400 without an error body: %q", rec.Body.String())
			}
			return
		case 204:
		default:
			t.Fatalf("POST /v1/register %q = %d %q", body, rec.Code, rec.Body.String())
		}
		list := store.List()
		if len(list) != 1 {
			t.Fatalf("accepted body %q stored %d registrations", body, len(list))
		}
		got := list[0]
		if err := got.Validate(); err != nil {
			t.Fatalf("stored registration is invalid: %v", err)
		}
		// The handler decodes the first JSON value; so does a Decoder here.
		var want Registration
		if err := json.NewDecoder(bytes.NewReader(body)).Decode(&want); err != nil {
			t.Fatalf("accepted body does not decode: %v", err)
		}
		if !equalRegistration(want, got) {
			t.Fatalf("stored registration %+v differs from the body's %+v", got, want)
		}
		again, err := NewStore(dir)
		if err != nil {
			t.Fatal(err)
		}
		if s := again.Skipped(); len(s) != 0 {
			t.Fatalf("reopened store skipped its own file: %v", s)
		}
		back, ok := again.Get(got.Key())
		if !ok || !equalRegistration(back, got) {
			t.Fatalf("reopened store has %+v (%v), stored was %+v", back, ok, got)
		}
	})
}

// FuzzStoreLoad puts an arbitrary file (name and content) in the registration directory, as a
// stale, torn or foreign file would be at proxier start. NewStore never fails for it, loads it
// only when it is a valid registration whose name matches its content, and never deletes a
// file that is not its own temporary file.
func FuzzStoreLoad(f *testing.F) {
	f.Add("c1@eth0.json", []byte(`{"containerID":"c1","ifName":"eth0","ips":["10.0.0.1"]}`))
	f.Add("c1@eth0.json", []byte(`{"containerID":"c2","ifName":"eth0"}`))
	f.Add("c1@eth0.json", []byte(`{"containerID":"c1","ifName":"eth0","ips":["10.0.0.1"]`))
	f.Add("c1@eth0.json", []byte(`{"containerID":"c1","ifName":"eth0","ips":[""]}`))
	f.Add("c1@a@b.json", []byte(`{"containerID":"c1","ifName":"a@b"}`))
	f.Add("README", []byte("hello"))
	f.Add(".tmp-123", []byte("{"))
	f.Fuzz(func(t *testing.T, name string, content []byte) {
		if name == "" || name == "." || name == ".." || filepath.Base(name) != name || strings.ContainsAny(name, "/\x00") {
			return
		}
		dir := t.TempDir()
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, content, 0o600); err != nil {
			return // a name the file system refuses (too long)
		}
		s, err := NewStore(dir)
		if err != nil {
			t.Fatalf("NewStore with file %q: %v", name, err)
		}
		_, statErr := os.Stat(path)
		if strings.HasPrefix(name, tmpPrefix) {
			if statErr == nil {
				t.Fatalf("leftover temporary file %q was kept", name)
			}
			return
		}
		if statErr != nil {
			t.Fatalf("file %q is gone after NewStore: %v", name, statErr)
		}
		list := s.List()
		switch {
		case len(list) == 0 && len(s.Skipped()) == 1:
		case len(list) == 1 && len(s.Skipped()) == 0:
			r := list[0]
			if err := r.Validate(); err != nil {
				t.Fatalf("loaded an invalid registration from %q: %v", name, err)
			}
			if fileName(r.Key()) != name {
				t.Fatalf("loaded %+v from a file named %q", r, name)
			}
		default:
			t.Fatalf("one file gave %d registrations and %d skipped", len(list), len(s.Skipped()))
		}
	})
}
