package synapse

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// DefaultVersion is the Synapse version scripts/synapse.sh installs by default (the one
// scripts/synapse-constraints.txt pins).
const DefaultVersion = "1.163.2"

// InstallOrFind runs scripts/synapse.sh (found via the module root: the nearest go.mod above the working
// directory) for DefaultVersion, installing Synapse and building its template database on first use, and
// returns the venv and template paths. The script is idempotent and locked, so every test package may call
// it; after the first run it returns in milliseconds.
func InstallOrFind(ctx context.Context) (venv, template string, err error) {
	return InstallVersion(ctx, DefaultVersion)
}

// InstallVersion is InstallOrFind for a chosen Synapse version (its dependencies are pinned by the default
// version's constraints, so pip may refuse versions too far apart).
func InstallVersion(ctx context.Context, version string) (venv, template string, err error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", "", fmt.Errorf("synapse: working directory: %w", err)
	}
	root, err := moduleRoot(wd)
	if err != nil {
		return "", "", err
	}
	script := filepath.Join(root, "scripts", "synapse.sh")
	cmd := exec.CommandContext(ctx, "bash", script, version)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", "", fmt.Errorf("synapse: %s %s: %w\n%s", script, version, err, strings.TrimSpace(stderr.String()))
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	venv = strings.TrimSpace(lines[len(lines)-1])
	if venv == "" {
		return "", "", fmt.Errorf("synapse: %s printed no venv path", script)
	}
	template = filepath.Join(venv, "template.db")
	for _, p := range []string{filepath.Join(venv, "bin", "python"), template} {
		if _, err := os.Stat(p); err != nil {
			return "", "", fmt.Errorf("synapse: %s reported %s but: %w", script, venv, err)
		}
	}
	return venv, template, nil
}

// moduleRoot returns the nearest directory at or above dir holding a go.mod.
func moduleRoot(dir string) (string, error) {
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		} else if !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("synapse: look for go.mod: %w", err)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("synapse: no go.mod found above the working directory")
		}
		dir = parent
	}
}
