package image

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Command is kubevs-image: read the lock, verify the packages, build, write the archive.
type Command struct {
	Lock, DebDir, BinDir, Out, Tag string
}

// Run builds the archive dated sourceDateEpoch (seconds since 1970, "" for 0) and returns the
// image's manifest digest. The archive is written under a temporary name and renamed.
func (c *Command) Run(sourceDateEpoch string) (string, error) {
	created, err := parseEpoch(sourceDateEpoch)
	if err != nil {
		return "", err
	}
	o := Options{Created: created, BinDir: c.BinDir, Extract: DpkgExtract}
	if o.Debs, err = VerifyLock(c.Lock, c.DebDir); err != nil {
		return "", err
	}
	img, err := Build(o)
	if err != nil {
		return "", err
	}
	return writeFile(c.Out, img, c.Tag, created)
}

// VerifyLock reads the lock file and checks every package's file in debDir (Deb.Verify); it
// returns their paths in the lock's order.
func VerifyLock(lock, debDir string) ([]string, error) {
	debs, err := ReadLock(lock)
	if err != nil {
		return nil, err
	}
	paths := make([]string, 0, len(debs))
	for _, d := range debs {
		p, err := d.Verify(debDir)
		if err != nil {
			return nil, err
		}
		paths = append(paths, p)
	}
	return paths, nil
}

// WriteStatic builds the image of o (see BuildStatic), dated sourceDateEpoch like Command.Run,
// writes it named tag to out and returns its manifest digest.
func WriteStatic(out, tag string, o StaticOptions, sourceDateEpoch string) (string, error) {
	created, err := parseEpoch(sourceDateEpoch)
	if err != nil {
		return "", err
	}
	o.Created = created
	img, err := BuildStatic(o)
	if err != nil {
		return "", err
	}
	return writeFile(out, img, tag, created)
}

// parseEpoch reads SOURCE_DATE_EPOCH (seconds since 1970, "" for 0).
func parseEpoch(sourceDateEpoch string) (time.Time, error) {
	if sourceDateEpoch == "" {
		return time.Unix(0, 0).UTC(), nil
	}
	sec, err := strconv.ParseInt(sourceDateEpoch, 10, 64)
	if err != nil || sec < 0 {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q: want seconds since 1970", sourceDateEpoch)
	}
	return time.Unix(sec, 0).UTC(), nil
}

// writeFile writes img's archive (WriteArchive) to out under a temporary name, renames it and
// returns the image's manifest digest.
func writeFile(out string, img v1.Image, tag string, created time.Time) (string, error) {
	digest, err := img.Digest()
	if err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), ".kubevs-image-*.tar")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	if err := WriteArchive(tmp, img, tag, created); err != nil {
		tmp.Close()
		return "", fmt.Errorf("write %s: %w", out, err)
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return "", err
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
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
