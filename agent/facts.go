package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Custom facts: a host's owner drops JSON files (an object of strings,
// numbers or booleans) or executables that print one into the facts
// directory; their keys become inventory facts. Executables run with a
// timeout; a broken source is skipped with a warning, never fatal. Later
// files (in name order) win on a duplicate key.
const (
	factsTimeout   = 10 * time.Second
	maxFacts       = 256
	maxFactKey     = 128
	maxFactValue   = 1024
	maxFactsOutput = 256 << 10
)

func (a *Agent) collectFacts(ctx context.Context) map[string]string {
	entries, err := os.ReadDir(a.cfg.FactsDir)
	if err != nil {
		return nil
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	facts := map[string]string{}
	for _, e := range entries {
		path := filepath.Join(a.cfg.FactsDir, e.Name())
		info, err := e.Info()
		if err != nil || !info.Mode().IsRegular() {
			continue
		}
		var raw []byte
		switch {
		case info.Mode()&0o111 != 0:
			raw, err = runFactsExecutable(ctx, path)
		case strings.HasSuffix(e.Name(), ".json"):
			raw, err = readLimited(path, maxFactsOutput)
		default:
			continue
		}
		if err == nil {
			err = mergeFacts(facts, raw)
		}
		if err != nil {
			a.log.Warn("skipping a custom facts source", "path", path, "err", err)
		}
	}
	return facts
}

func runFactsExecutable(ctx context.Context, path string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, factsTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path)
	var out bytes.Buffer
	cmd.Stdout = &limitedWriter{w: &out, n: maxFactsOutput}
	setProcessGroup(cmd)
	cmd.WaitDelay = time.Second
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	return out.Bytes(), nil
}

func readLimited(path string, n int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, n+1))
	if err == nil && int64(len(b)) > n {
		err = fmt.Errorf("larger than %d bytes", n)
	}
	return b, err
}

// mergeFacts adds the scalar values of a JSON object to facts.
func mergeFacts(facts map[string]string, raw []byte) error {
	var obj map[string]any
	if err := json.Unmarshal(raw, &obj); err != nil {
		return fmt.Errorf("not a JSON object: %w", err)
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		var v string
		switch x := obj[k].(type) {
		case string:
			v = x
		case float64, bool:
			v = fmt.Sprint(x)
		default:
			continue // nested values are not facts
		}
		if len(k) == 0 || len(k) > maxFactKey || len(v) > maxFactValue {
			continue
		}
		if _, exists := facts[k]; !exists && len(facts) >= maxFacts {
			return fmt.Errorf("more than %d facts", maxFacts)
		}
		facts[k] = strings.ToValidUTF8(v, "\uFFFD")
	}
	return nil
}

// limitedWriter drops what comes after n bytes.
type limitedWriter struct {
	w io.Writer
	n int64
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if l.n <= 0 {
		return len(p), nil
	}
	q := p
	if int64(len(q)) > l.n {
		q = q[:l.n]
	}
	n, err := l.w.Write(q)
	l.n -= int64(n)
	if err != nil {
		return n, err
	}
	return len(p), nil
}
