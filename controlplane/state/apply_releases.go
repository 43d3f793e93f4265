package state

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/drover-dev/drover/artifacts/chunks"

	"github.com/drover-dev/drover/artifacts"
	"github.com/drover-dev/drover/controlplane/api"
)

// trustSet sets an application's first trust policy, or rotates it. A
// rotation must carry signatures of the current keys (at least their
// threshold) over the new version: an admin alone cannot change who signs
// releases once a policy exists.
func (w *writer) trustSet(b TrustSet) *api.Error {
	p := b.Policy
	old, _ := w.first(tabTrust, p.App).(*api.TrustPolicy)
	switch {
	case old == nil && p.Serial != 1:
		return api.Errorf(api.CodeInvalid, "application %s has no trust policy yet: the first one has serial 1, not %d", p.App, p.Serial)
	case old == nil:
		if err := p.Validate(); err != nil {
			return api.Errorf(api.CodeInvalid, "%v", err)
		}
	default:
		if err := old.VerifySuccessor(p); err != nil {
			return api.Errorf(api.CodeForbidden, "%v", err)
		}
	}
	tp := &api.TrustPolicy{SignedPolicy: p}
	if old != nil {
		tp.Meta = old.Meta
	}
	w.meta(&tp.Meta)
	w.insert(tabTrust, tp)
	w.insert(tabTrustLog, &trustVersion{ID: fmt.Sprintf("%s/%020d", p.App, p.Serial), App: p.App, Policy: p})
	w.audit(AuditTrustSet, "trust/"+p.App, "serial %d: %d of %d key(s)", p.Serial, p.Threshold, len(p.Keys))
	return nil
}

// payloadRegister records a payload's chunk list, checked against its
// declared size, and adds the servers that hold all its chunks.
func (w *writer) payloadRegister(b PayloadRegister) *api.Error {
	if err := artifacts.ValidateDigest(b.SHA256); err != nil {
		return api.Errorf(api.CodeInvalid, "payload: %v", err)
	}
	if b.Format != artifacts.FormatTar && b.Format != artifacts.FormatTarGz {
		return api.Errorf(api.CodeInvalid, "payload format %q: allowed values are tar, tar.gz", b.Format)
	}
	list, err := chunks.DecodeList(b.List)
	if err != nil {
		return api.Errorf(api.CodeInvalid, "payload %s: %v", b.SHA256, err)
	}
	if list.Size() != b.Size || b.Size <= 0 {
		return api.Errorf(api.CodeInvalid, "payload %s: its chunks add up to %d bytes, not %d", b.SHA256, list.Size(), b.Size)
	}
	p := &api.Payload{SHA256: b.SHA256, Size: b.Size, Format: b.Format, Chunks: list.Digest(), List: b.List}
	if old, _ := w.first(tabPayloads, b.SHA256).(*api.Payload); old != nil {
		if old.Chunks != p.Chunks || old.Size != p.Size || old.Format != p.Format {
			return api.Errorf(api.CodeConflict, "payload %s is recorded with another chunk list, size or format", b.SHA256)
		}
		*p = *old
	}
	holders := slices.Clone(p.Holders)
	for _, h := range b.Holders {
		if !slices.Contains(holders, h) {
			holders = append(holders, h)
		}
	}
	slices.Sort(holders)
	p.Holders = holders
	w.meta(&p.Meta)
	w.insert(tabPayloads, p)
	return nil
}

// releaseCreate records a release after checking, here in the state
// machine, that its payload is stored and its signatures satisfy the
// application's trust policy as committed at this point of the log.
func (w *writer) releaseCreate(b ReleaseCreate) (string, *api.Error) {
	m, err := artifacts.ParseManifest(b.Manifest)
	if err != nil {
		return "", api.Errorf(api.CodeInvalid, "%v", err)
	}
	if old, _ := w.first(tabReleases, m.ID()).(*api.Release); old != nil {
		if !bytes.Equal(old.Manifest, b.Manifest) {
			return "", api.Errorf(api.CodeConflict, "release %s already exists with a different manifest; choose a new version", m.ID())
		}
		return m.ID(), nil
	}
	payload, _ := w.first(tabPayloads, m.Payload.SHA256).(*api.Payload)
	switch {
	case payload == nil:
		return "", api.Errorf(api.CodeInvalid, "payload %s has not been uploaded; run: drover artifact push FILE", m.Payload.SHA256)
	case payload.Size != m.Payload.Size:
		return "", api.Errorf(api.CodeInvalid, "payload %s is %d bytes, the manifest says %d", m.Payload.SHA256, payload.Size, m.Payload.Size)
	case payload.Chunks != m.Payload.Chunks:
		return "", api.Errorf(api.CodeInvalid, "payload %s has chunk list %s, the manifest names %s", m.Payload.SHA256, payload.Chunks, m.Payload.Chunks)
	case payload.Format != m.Payload.Format:
		return "", api.Errorf(api.CodeInvalid, "payload %s is %s, the manifest says %s", m.Payload.SHA256, payload.Format, m.Payload.Format)
	}
	policy, ok := artifacts.PolicyFor(w.trustPolicies(), m.Name)
	if !ok {
		return "", api.Errorf(api.CodeInvalid, "no trust policy covers application %s; an admin sets one with: drover trust set", m.Name)
	}
	if err := policy.Verify(b.Manifest, b.Signatures); err != nil {
		return "", api.Errorf(api.CodeForbidden, "release %s: %v", m.ID(), err)
	}
	r := &api.Release{ID: m.ID(), App: m.Name, Version: m.Version, Manifest: b.Manifest, Signatures: b.Signatures,
		Payload: m.Payload.SHA256, CreatedBy: w.cmd.Actor, CreatedAt: w.cmd.Time}
	w.meta(&r.Meta)
	w.insert(tabReleases, r)
	w.audit(AuditReleaseCreate, r.ID, "payload %s (%d bytes), %d signature(s)", r.Payload, m.Payload.Size, len(r.Signatures))
	return r.ID, nil
}
