package test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/drover-dev/drover/artifacts"
	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/controlplane/client"
	"github.com/drover-dev/drover/controlplane/state"
	"github.com/drover-dev/drover/controlplane/testcluster"
	"github.com/drover-dev/drover/deploy"
)

// smokeJob passes unless the host holds a file named fail-smoke, and
// writes a JUnit report either way.
var smokeJob = api.VerifyJob{Name: "smoke", Timeout: artifacts.Duration(30 * time.Second), Command: []string{"sh", "-c",
	`test -x bin/web || exit 2
if [ -e "$DROVER_HOST_DIR/fail-smoke" ]; then
  echo '<testsuite tests="2" failures="1"/>' > "$DROVER_JUNIT_FILE"; echo "checkout flow broken" >&2; exit 1
fi
echo '<testsuite tests="2"/>' > "$DROVER_JUNIT_FILE"; echo "2 tests passed"`}}

// TestLifecycleEvidenceAndLineage takes releases through staging and
// production on real agents: production is refused until the release has
// passed staging and its smoke test there, an override is recorded, and
// the lineage answers which hosts run what, also after the leader fails.
func TestLifecycleEvidenceAndLineage(t *testing.T) {
	c := testcluster.Start(t, 3)
	key := c.SigningKey()
	ctx := context.Background()
	s1 := c.StartAgent("s1", "", c.Token(map[string]string{"env": "staging"}, 1))
	c.StartAgent("p1", "", c.Token(map[string]string{"env": "prod"}, 1))
	c.StartAgent("p2", "", c.Token(map[string]string{"env": "prod"}, 1))
	for _, env := range []string{"staging", "prod"} {
		if err := c.Admin.SetEnvironment(ctx, api.Environment{Name: env, Where: "env=" + env}); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Admin.SetLifecycle(ctx, api.Lifecycle{Name: "web", Apps: []string{"web"},
		Stages: []api.Stage{{Env: "staging", Verify: []api.VerifyJob{smokeJob}}, {Env: "prod"}}}); err != nil {
		t.Fatal(err)
	}
	testcluster.WaitFor(t, 20*time.Second, "three hosts", func() bool {
		hosts, err := c.Admin.Hosts(ctx, client.HostQuery{})
		return err == nil && len(hosts) == 3
	})
	rollout := func(release, env string, sel map[string]string, override string) (string, error) {
		w, _ := deploy.ParseWaves("100%")
		created, err := c.Admin.CreateRollout(ctx, api.RolloutRequest{Release: release, Env: env, Selector: sel, Plan: deploy.Plan{Waves: w}, Start: true, Override: override})
		if err != nil {
			return "", err
		}
		return created.ID, nil
	}
	evidence := func(release string) []*api.JobRun {
		l, err := c.Admin.Lineage(ctx, release)
		if err != nil {
			t.Fatal(err)
		}
		return l.Evidence
	}

	c.Publish("web", "1.0.0", webFiles, webCheck, key)
	// Production first, by label: the start is refused, naming the
	// missing stage; the rollout stays pending until aborted.
	_, err := rollout("web@1.0.0", "", map[string]string{"env": "prod"}, "")
	if err == nil || !strings.Contains(err.Error(), "has not completed in staging, the stage before prod") {
		t.Fatalf("production before staging: %v; want a refusal naming staging", err)
	}
	abortPending(t, c)
	id, err := rollout("web@1.0.0", "staging", nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if st := c.WaitRollout(id, 60*time.Second, api.RolloutCompleted, api.RolloutPaused); st.Rollout.State != api.RolloutCompleted {
		t.Fatalf("staging rollout ended %s: %s", st.Rollout.State, st.Rollout.Reason)
	}
	testcluster.WaitFor(t, 30*time.Second, "the smoke test's result", func() bool {
		ev := evidence("web@1.0.0")
		return len(ev) == 1 && ev[0].State != api.JobPending
	})
	if ev := evidence("web@1.0.0")[0]; ev.State != api.JobPassed || ev.Host != "s1" || ev.JUnit == nil || ev.JUnit.Tests != 2 || !strings.Contains(ev.Output, "2 tests passed") {
		t.Fatalf("smoke evidence = %+v", ev)
	}
	rep, err := c.Admin.Report(ctx, id, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Env != "staging" || len(rep.Evidence) != 1 || rep.Evidence[0].State != api.JobPassed {
		t.Errorf("post-release review of the staging rollout: env %q evidence %+v", rep.Env, rep.Evidence)
	}
	prod, err := rollout("web@1.0.0", "prod", nil, "")
	if err != nil {
		t.Fatalf("production after staging passed: %v", err)
	}
	if st := c.WaitRollout(prod, 60*time.Second, api.RolloutCompleted, api.RolloutPaused); st.Rollout.State != api.RolloutCompleted {
		t.Fatalf("prod rollout ended %s: %s", st.Rollout.State, st.Rollout.Reason)
	}

	// 2.0.0 fails its smoke test in staging: production is refused until
	// an admin overrides, which the audit trail records.
	if err := os.WriteFile(filepath.Join(s1.Dir, "fail-smoke"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	c.Publish("web", "2.0.0", webFiles, webCheck, key)
	id, err = rollout("web@2.0.0", "staging", nil, "")
	if err != nil {
		t.Fatal(err)
	}
	c.WaitRollout(id, 60*time.Second, api.RolloutCompleted)
	testcluster.WaitFor(t, 30*time.Second, "the failing smoke test's result", func() bool {
		ev := evidence("web@2.0.0")
		return len(ev) == 1 && ev[0].State == api.JobFailed
	})
	_, err = rollout("web@2.0.0", "prod", nil, "")
	if err == nil || !strings.Contains(err.Error(), "verification in staging failed: smoke on s1 (exit 1, 1 of 2 test(s) failed)") {
		t.Fatalf("production after a failed smoke test: %v", err)
	}
	abortPending(t, c)
	prod2, err := rollout("web@2.0.0", "prod", nil, "smoke flake, known issue OPS-12")
	if err != nil {
		t.Fatal(err)
	}
	c.WaitRollout(prod2, 60*time.Second, api.RolloutCompleted)
	entries, err := c.Admin.AuditAll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(entries, func(e api.AuditEntry) bool {
		return e.Action == state.AuditRolloutOverride && e.Subject == prod2 && strings.Contains(e.Detail, "OPS-12")
	}) {
		t.Errorf("the override is not in the audit trail")
	}

	// An environment in use cannot go; once its lifecycle is gone, it can.
	if err := c.Admin.DeleteEnvironment(ctx, "prod"); err == nil || !strings.Contains(err.Error(), "stage of lifecycle web") {
		t.Errorf("deleting an environment in use: %v", err)
	}
	if err := c.Admin.DeleteLifecycle(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	if err := c.Admin.DeleteEnvironment(ctx, "prod"); err != nil {
		t.Fatal(err)
	}
	if envs, err := c.Admin.Environments(ctx); err != nil || len(envs) != 1 || envs[0].Name != "staging" {
		t.Errorf("environments after deleting prod: %v, %v", envs, err)
	}

	// Lineage, from any server, also after the leader is gone.
	leader := c.Leader()
	c.StopServer(leader)
	for i := range 3 {
		if i == leader {
			continue
		}
		cl := c.ClientFor(i)
		var l *api.Lineage
		testcluster.WaitFor(t, 20*time.Second, fmt.Sprintf("lineage from server %d", i), func() bool {
			l, err = cl.Lineage(ctx, "web@2.0.0")
			return err == nil
		})
		var envs []string
		for _, s := range l.Stages {
			envs = append(envs, s.Env+":"+s.State)
		}
		if !slices.Equal(envs, []string{"staging:completed", "prod:completed"}) || !slices.Equal(l.Hosts, []string{"p1", "p2", "s1"}) {
			t.Errorf("server %d: lineage stages %v hosts %v", i, envs, l.Hosts)
		}
	}
}

// abortPending aborts the one pending rollout and returns its ID.
func abortPending(t *testing.T, c *testcluster.Cluster) string {
	t.Helper()
	rollouts, err := c.Admin.Rollouts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rollouts {
		if r.State == api.RolloutPending {
			if err := c.Admin.ControlRollout(context.Background(), r.ID, api.ActionAbort, "refused by its readiness review"); err != nil {
				t.Fatal(err)
			}
			return r.ID
		}
	}
	t.Fatal("no pending rollout")
	return ""
}

// statement is an in-toto SLSA v1 provenance statement about digest.
func statement(digest, builder, repo, commit string) []byte {
	return fmt.Appendf(nil, `{"_type":"https://in-toto.io/Statement/v1",
 "subject":[{"name":"web.tar","digest":{"sha256":%q}}],
 "predicateType":"https://slsa.dev/provenance/v1",
 "predicate":{"buildDefinition":{"buildType":"https://example.com/make/v1",
   "externalParameters":{},
   "resolvedDependencies":[{"uri":"git+%s@refs/heads/main","digest":{"gitCommit":%q}}]},
  "runDetails":{"builder":{"id":%q},"metadata":{"invocationId":"build-77"}}}}`, digest, repo, commit, builder)
}

func fileSHA256(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// TestProvenance binds an in-toto statement to an artifact, requires it by
// trust policy, and finds the hosts running a commit.
func TestProvenance(t *testing.T) {
	c := testcluster.Start(t, 3)
	key := c.SigningKey()
	ctx := context.Background()
	const (
		builder = "https://github.com/actions/runner/github-hosted"
		repo    = "https://github.com/acme/web"
		commit  = "3f2a9c1d8e7b6a5f4e3d2c1b0a9f8e7d6c5b4a39"
	)
	// web must come from our builder and repository; api from a builder
	// that did not build it.
	pub, err := os.ReadFile(strings.TrimSuffix(key, ".key") + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	pk, err := artifacts.ParsePublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	for app, builders := range map[string][]string{"web": {builder}, "api": {"https://builder.example/trusted"}} {
		p := artifacts.Policy{App: app, Keys: []string{pk.String()}, Threshold: 1,
			Provenance: &artifacts.ProvenanceRule{Builders: builders, Repositories: []string{repo}}}
		if err := c.Admin.SetTrust(ctx, artifacts.SignedPolicy{Serial: 1, Policy: p}); err != nil {
			t.Fatal(err)
		}
	}
	c.StartAgent("h1", "", c.Token(nil, 1))

	publish := func(app string) string {
		payload := c.Pack(app+"-1.0.0", webFiles)
		digest := fileSHA256(t, payload)
		if _, err := c.Admin.Upload(ctx, payload, artifacts.FormatTar); err != nil {
			t.Fatal(err)
		}
		if app == "web" {
			for what, stmt := range map[string][]byte{
				"about another artifact": statement(strings.Repeat("ab", 32), builder, repo, commit),
				"malformed":              []byte(`{"_type":"https://in-toto.io/Statement/v1","subject":`),
				"without a builder":      statement(digest, "", repo, commit),
			} {
				err := c.Admin.SetProvenance(ctx, digest, stmt)
				var apiErr *api.Error
				if !errors.As(err, &apiErr) || apiErr.Code != api.CodeInvalid || !strings.Contains(err.Error(), "invalid provenance") {
					t.Errorf("provenance %s: %v; want it refused as invalid", what, err)
				}
			}
		}
		if err := c.Admin.SetProvenance(ctx, digest, statement(digest, builder, repo, commit)); err != nil {
			t.Fatal(err)
		}
		m := c.PublishPayload(artifacts.Manifest{Name: app, Version: "1.0.0", HealthChecks: webCheck}, payload, key)
		if p := m.Provenance; p == nil || p.Builder != builder || p.Repository != repo || p.SourceCommit != commit || p.Statement == "" {
			t.Fatalf("signed manifest provenance = %+v", p)
		}
		return digest
	}
	digest := publish("web")
	publish("api")

	w, _ := deploy.ParseWaves("100%")
	_, err = c.Admin.CreateRollout(ctx, api.RolloutRequest{Release: "api@1.0.0", Plan: deploy.Plan{Waves: w}, Start: true})
	if err == nil || !strings.Contains(err.Error(), "provenance") || !strings.Contains(err.Error(), "does not allow") {
		t.Fatalf("release from an unlisted builder: %v; want the provenance gate to refuse it", err)
	}
	abortPending(t, c)

	id := c.RolloutWith("web@1.0.0", nil)
	if st := c.WaitRollout(id, 60*time.Second, api.RolloutCompleted, api.RolloutPaused); st.Rollout.State != api.RolloutCompleted {
		t.Fatalf("rollout ended %s: %s", st.Rollout.State, st.Rollout.Reason)
	}
	testcluster.WaitFor(t, 20*time.Second, "h1 to report web 1.0.0", func() bool {
		hosts, err := c.Admin.Hosts(ctx, client.HostQuery{RunningCommit: commit[:10]})
		return err == nil && len(hosts) == 1 && hosts[0].ID == "h1"
	})
	if hosts, err := c.Admin.Hosts(ctx, client.HostQuery{RunningCommit: strings.Repeat("0", 12)}); err != nil || len(hosts) != 0 {
		t.Errorf("hosts running another commit: %v, %v", hosts, err)
	}
	if _, err := c.Admin.Hosts(ctx, client.HostQuery{RunningCommit: "xyz"}); err == nil {
		t.Errorf("a malformed commit was accepted")
	}
	l, err := c.Admin.Lineage(ctx, "web@1.0.0")
	if err != nil || l.Statement == nil || l.Statement.Commit != commit || l.Payload != digest || l.Provenance.SourceCommit != commit {
		t.Errorf("lineage = %+v, %v", l, err)
	}
}
