package config

import (
	"os"
	"strings"
	"testing"
)

// The README's configuration example is what operators copy: it must decode as written.
func TestREADMEExampleDecodes(t *testing.T) {
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(data), "```yaml\napiVersion: "+APIVersion)
	if !ok {
		t.Fatal("README.md has no ProxierConfiguration example in a yaml block")
	}
	example, _, ok := strings.Cut(rest, "```")
	if !ok {
		t.Fatal("README.md: the yaml block does not end")
	}
	if _, err := Decode([]byte("apiVersion: " + APIVersion + example)); err != nil {
		t.Errorf("README.md's example: %v", err)
	}
}
