package nodeapi

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// TestListenTakingOver: a newcomer takes the socket from a holder that yields (SetYield: the
// holder stops serving when asked) and fails, leaving it alone, against one that does not.
func TestListenTakingOver(t *testing.T) {
	for _, tc := range []struct {
		name     string
		yields   bool
		wantTook bool
		wantErr  error
	}{
		{name: "holder yields", yields: true, wantTook: true},
		{name: "holder does not yield", yields: false, wantErr: ErrNotYielding},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sock := filepath.Join(t.TempDir(), "run", "proxier.sock")
			if err := os.Mkdir(filepath.Dir(sock), 0o700); err != nil {
				t.Fatal(err)
			}
			store, err := NewStore(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			holder := NewServer(sock, store, nil)
			ctx, stopHolder := context.WithCancel(context.Background())
			defer stopHolder()
			var asked atomic.Int32
			if tc.yields {
				holder.SetYield(func() { asked.Add(1); stopHolder() })
			}
			if err := holder.Listen(); err != nil {
				t.Fatal(err)
			}
			served := make(chan error, 1)
			go func() { served <- holder.Serve(ctx) }()

			newcomer := NewServer(sock, store, nil)
			took, err := newcomer.ListenTakingOver(context.Background(), 10*time.Second)
			if took != tc.wantTook || !errors.Is(err, tc.wantErr) {
				t.Fatalf("ListenTakingOver = %v, %v; want %v, %v", took, err, tc.wantTook, tc.wantErr)
			}
			if tc.wantTook {
				defer newcomer.sock.close()
				if err := <-served; err != nil {
					t.Errorf("holder's Serve: %v", err)
				}
				if n := asked.Load(); n != 1 {
					t.Errorf("holder asked to yield %d times, want 1", n)
				}
				return
			}
			if !errors.Is(err, ErrServerRunning) {
				t.Errorf("error %v does not say another server runs", err)
			}
			if _, err := NewClient(sock).Status(context.Background()); err != nil {
				t.Errorf("the holder no longer answers: %v", err)
			}
		})
	}
}
