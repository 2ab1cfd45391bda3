package image

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

// Command is kubevs-image: read the lock, verify the packages, build, write the archive.
type Command struct {
	Lock, DebDir, BinDir, Out, Tag string
}

// Run builds the archive dated sourceDateEpoch (seconds since 1970, "" for 0) and returns the
// image's manifest digest. The archive is written under a temporary name and renamed.
func (c *Command) Run(sourceDateEpoch string) (string, error) {
	created := time.Unix(0, 0).UTC()
	if sourceDateEpoch != "" {
		sec, err := strconv.ParseInt(sourceDateEpoch, 10, 64)
		if err != nil || sec < 0 {
			return "", fmt.Errorf("SOURCE_DATE_EPOCH=%q: want seconds since 1970", sourceDateEpoch)
		}
		created = time.Unix(sec, 0).UTC()
	}
	debs, err := ReadLock(c.Lock)
	if err != nil {
		return "", err
	}
	o := Options{Created: created, BinDir: c.BinDir, Extract: DpkgExtract}
	for _, d := range debs {
		p, err := d.Verify(c.DebDir)
		if err != nil {
			return "", err
		}
		o.Debs = append(o.Debs, p)
	}
	img, err := Build(o)
	if err != nil {
		return "", err
	}
	digest, err := img.Digest()
	if err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(filepath.Dir(c.Out), ".kubevs-image-*.tar")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	if err := WriteArchive(tmp, img, c.Tag, created); err != nil {
		tmp.Close()
		return "", fmt.Errorf("write %s: %w", c.Out, err)
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return "", err
	}
	if err := os.Rename(tmp.Name(), c.Out); err != nil {
		return "", err
	}
	return digest.String(), nil
}

// DpkgExtract streams a .deb's data tar through dpkg-deb --fsys-tarfile.
func DpkgExtract(deb string) (io.ReadCloser, error) {
	cmd := exec.Command("dpkg-deb", "--fsys-tarfile", deb)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("dpkg-deb --fsys-tarfile %s: %w", deb, err)
	}
	return &waitCloser{ReadCloser: out, cmd: cmd}, nil
}

type waitCloser struct {
	io.ReadCloser
	cmd *exec.Cmd
}

func (w *waitCloser) Close() error {
	_, _ = io.Copy(io.Discard, w.ReadCloser)
	if err := w.cmd.Wait(); err != nil {
		return fmt.Errorf("%s: %w", w.cmd, err)
	}
	return nil
}
