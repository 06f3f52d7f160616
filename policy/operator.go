package policy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/timstack/timstack/policy/internal/wasm"
)

// OperatorStatus names the operator module files in force and the error of the last load attempt (nil when
// the last attempt succeeded). After a failed reload, loaded still names the last good set.
func (e *Engine) OperatorStatus() (loaded []string, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.opLoaded), e.opErr
}

// Run checks cfg.OperatorDir every cfg.OperatorReload until ctx ends and loads the modules when they changed.
// Without an OperatorDir it returns at once.
func (e *Engine) Run(ctx context.Context) {
	if e.cfg.OperatorDir == "" {
		return
	}
	t := time.NewTicker(e.cfg.OperatorReload)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			e.reloadOperators(ctx)
		}
	}
}

// reloadOperators loads the operator modules if the folder changed since the last attempt.
func (e *Engine) reloadOperators(ctx context.Context) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.loadOperatorsLocked(ctx, false); err != nil {
		// Someone must act: the operator's change is not in force.
		e.log.Error("policy: operator modules not reloaded, keeping the last good set", "error", err,
			"dir", e.cfg.OperatorDir, "loaded", e.opLoaded)
	}
}

// loadOperatorsLocked reads, compiles and publishes the operator modules. On failure the last good set stays
// in force (or none, on the first load) and the error is remembered for OperatorStatus. A folder that has not
// changed since the last attempt is not tried again unless force is set.
func (e *Engine) loadOperatorsLocked(ctx context.Context, force bool) error {
	files, fingerprint, readErr := readOperatorDir(e.cfg.OperatorDir)
	if !force && fingerprint == e.opAttempt {
		return nil
	}
	e.opAttempt = fingerprint
	if readErr != nil {
		e.opErr = readErr
		return readErr
	}
	c, parsed, err := compileModules(e.embedded, files)
	if err != nil {
		e.opErr = fmt.Errorf("operator modules: %w", err)
		return e.opErr
	}
	names := make([]string, len(files))
	for i, f := range files {
		names[i] = strings.TrimPrefix(f.name, "operator/")
	}
	var wp *wasm.Policy
	if e.cfg.Evaluator == EvaluatorWasm {
		var err error
		if wp, err = compileWasm(ctx, parsed); err != nil {
			e.log.Warn("policy: the module set runs on topdown, the wasm target cannot compile it", "error", err)
		}
	}
	prev, prevWasm, prevHash, prevLoaded := e.compiler, e.wasm, e.modulesHash, e.opLoaded
	e.compiler, e.wasm, e.modulesHash, e.opLoaded = c, wp, modulesHash(e.embedded, files), names
	if err := e.publishLocked(ctx); err != nil {
		e.compiler, e.wasm, e.modulesHash, e.opLoaded = prev, prevWasm, prevHash, prevLoaded
		if wp != nil {
			wp.Close(ctx)
		}
		e.opErr = fmt.Errorf("operator modules: %w", err)
		return e.opErr
	}
	if prevWasm != nil {
		// Evaluations that loaded the old state a moment ago may still be running on it; they finish within
		// microseconds, and one that does not falls back to topdown (ErrClosed).
		time.AfterFunc(e.retireAfter, func() { prevWasm.Close(context.Background()) })
	}
	if !force || len(names) > 0 {
		e.log.Info("policy: operator modules loaded", "modules", names, "revision", e.state.Load().revision)
	}
	e.opErr = nil
	return nil
}

// defaultRetireAfter is how long a replaced wasm policy stays open for evaluations that started before the
// swap.
const defaultRetireAfter = 10 * time.Second

// compileWasm compiles the parsed embedded and operator modules with OPA's wasm target.
func compileWasm(ctx context.Context, mods []wasm.Module) (*wasm.Policy, error) {
	p, err := wasm.Compile(ctx, mods, []string{wasmDecisionEntrypoint, wasmReasonsEntrypoint})
	if err != nil {
		return nil, err
	}
	for _, name := range []string{wasmDecisionEntrypoint, wasmReasonsEntrypoint} {
		if _, ok := p.Entrypoint(name); !ok {
			p.Close(ctx)
			return nil, fmt.Errorf("wasm: entrypoint %s missing", name)
		}
	}
	return p, nil
}

// readOperatorDir returns the *.rego files in dir (tests excluded), sorted by name, and a fingerprint of
// names and contents. An empty folder is a valid, empty set: that is how an operator switches extra rules off. Contents, not mtimes, decide: an edit within the same second still counts.
func readOperatorDir(dir string) ([]moduleSource, string, error) {
	if dir == "" {
		return nil, "", nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		err = fmt.Errorf("operator modules: %w", err)
		return nil, "error:" + err.Error(), err
	}
	var files []moduleSource
	h := sha256.New()
	for _, ent := range entries {
		name := ent.Name()
		if ent.IsDir() || !strings.HasSuffix(name, ".rego") || strings.HasSuffix(name, "_test.rego") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			err = fmt.Errorf("operator modules: %w", err)
			return nil, "error:" + err.Error(), err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", name, len(b))
		h.Write(b)
		files = append(files, moduleSource{name: "operator/" + name, src: string(b)})
	}
	return files, hex.EncodeToString(h.Sum(nil)), nil
}
