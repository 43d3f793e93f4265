package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"time"
)

// labelKey marks everything a run creates; its value is the run's ID.
const labelKey = "drover-e2e"

// dockerTimeout bounds one docker command unless the caller says otherwise.
const dockerTimeout = 2 * time.Minute

// docker runs the docker CLI with args and returns its standard output.
// The error names the command and carries its standard error.
func docker(ctx context.Context, args ...string) (string, error) {
	return dockerIn(ctx, dockerTimeout, nil, args...)
}

// dockerIn is docker with a timeout and standard input.
func dockerIn(ctx context.Context, timeout time.Duration, stdin io.Reader, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w after %v", ctx.Err(), timeout)
		}
		return stdout.String(), fmt.Errorf("docker %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// containerLogs returns a container's log, standard output and error
// interleaved as docker stored them; tail "all" for the whole log.
func containerLogs(ctx context.Context, container, since, tail string) string {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	args := []string{"logs", "--tail", tail}
	if since != "" {
		args = append(args, "--since", since)
	}
	out, err := exec.CommandContext(ctx, "docker", append(args, container)...).CombinedOutput()
	if err != nil {
		return fmt.Sprintf("%s(docker logs %s: %v)", out, container, err)
	}
	return string(out)
}

// dockerLines runs docker and splits its output into non-empty lines.
func dockerLines(ctx context.Context, args ...string) ([]string, error) {
	out, err := docker(ctx, args...)
	return strings.Fields(out), err
}

// sweep removes every container, network and image labelled with filter
// ("drover-e2e" for every run's, "drover-e2e=RUN" for one run's).
// Paused containers are resumed first, since a paused container cannot be
// killed. It keeps going after an error and returns the first.
func sweep(ctx context.Context, filter string) error {
	var first error
	keep := func(err error) {
		if err != nil && first == nil {
			first = err
		}
	}
	paused, err := dockerLines(ctx, "ps", "-q", "--filter", "label="+filter, "--filter", "status=paused")
	keep(err)
	if len(paused) > 0 {
		_, err := docker(ctx, append([]string{"unpause"}, paused...)...)
		keep(err)
	}
	ids, err := dockerLines(ctx, "ps", "-aq", "--filter", "label="+filter)
	keep(err)
	if len(ids) > 0 {
		_, err := docker(ctx, append([]string{"rm", "-f", "-v"}, ids...)...)
		keep(err)
	}
	nets, err := dockerLines(ctx, "network", "ls", "-q", "--filter", "label="+filter)
	keep(err)
	for _, n := range nets {
		_, err := docker(ctx, "network", "rm", n)
		keep(err)
	}
	images, err := dockerLines(ctx, "images", "-q", "--filter", "label="+filter)
	keep(err)
	if len(images) > 0 {
		_, err := docker(ctx, append([]string{"rmi", "-f"}, dedup(images)...)...)
		keep(err)
	}
	return first
}

// leftovers lists what carries the filter's label: what a sweep missed.
func leftovers(ctx context.Context, filter string) []string {
	var out []string
	for _, q := range [][]string{
		{"ps", "-aq", "--filter", "label=" + filter},
		{"network", "ls", "-q", "--filter", "label=" + filter},
		{"images", "-q", "--filter", "label=" + filter},
	} {
		ids, err := dockerLines(ctx, q...)
		if err != nil {
			out = append(out, fmt.Sprintf("%s: %v", q[0], err))
		}
		out = append(out, ids...)
	}
	return out
}

// copyOut reads one file or symbolic link from a container, running or
// not, through `docker cp` (a tar stream): the container's own view of its
// disk, not anything the control plane says.
func copyOut(ctx context.Context, container, path string) (*tar.Header, []byte, error) {
	out, err := docker(ctx, "cp", container+":"+path, "-")
	if err != nil {
		return nil, nil, err
	}
	tr := tar.NewReader(strings.NewReader(out))
	hdr, err := tr.Next()
	if err != nil {
		return nil, nil, fmt.Errorf("docker cp %s:%s: bad tar stream: %w", container, path, err)
	}
	body, err := io.ReadAll(io.LimitReader(tr, 16<<20))
	if err != nil {
		return nil, nil, fmt.Errorf("docker cp %s:%s: %w", container, path, err)
	}
	return hdr, body, nil
}

// isMissing reports whether a docker cp error means the path does not exist.
func isMissing(err error) bool {
	return err != nil && strings.Contains(err.Error(), "Could not find the file")
}

func dedup(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
