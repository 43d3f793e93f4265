package state

import (
	"bytes"
	"slices"

	"github.com/drover-dev/drover/artifacts"
	"github.com/drover-dev/drover/controlplane/api"
)

func (w *writer) trustSet(b TrustSet) *api.Error {
	if err := b.Policy.Validate(); err != nil {
		return api.Errorf(api.CodeInvalid, "%v", err)
	}
	p := &api.TrustPolicy{Policy: b.Policy}
	if old, _ := w.first(tabTrust, b.Policy.App).(*api.TrustPolicy); old != nil {
		p.Meta = old.Meta
	}
	w.meta(&p.Meta)
	w.insert(tabTrust, p)
	return nil
}

func (w *writer) blobRegister(b BlobRegister) *api.Error {
	if err := artifacts.ValidateDigest(b.Digest); err != nil || b.Size <= 0 {
		return api.Errorf(api.CodeInvalid, "blob: a sha256 digest and a positive size are required")
	}
	blob := &api.Blob{Digest: b.Digest, Size: b.Size}
	if old, _ := w.first(tabBlobs, b.Digest).(*api.Blob); old != nil {
		if old.Size != b.Size {
			return api.Errorf(api.CodeConflict, "blob %s is recorded with size %d, not %d", b.Digest, old.Size, b.Size)
		}
		*blob = *old
	}
	holders := slices.Clone(blob.Holders)
	for _, h := range b.Holders {
		if !slices.Contains(holders, h) {
			holders = append(holders, h)
		}
	}
	slices.Sort(holders)
	blob.Holders = holders
	w.meta(&blob.Meta)
	w.insert(tabBlobs, blob)
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
	blob, _ := w.first(tabBlobs, m.Payload.SHA256).(*api.Blob)
	if blob == nil {
		return "", api.Errorf(api.CodeInvalid, "payload %s has not been uploaded; run: drover artifact push FILE", m.Payload.SHA256)
	}
	if blob.Size != m.Payload.Size {
		return "", api.Errorf(api.CodeInvalid, "payload %s is %d bytes, the manifest says %d", m.Payload.SHA256, blob.Size, m.Payload.Size)
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
	return r.ID, nil
}

func (w *writer) trustPolicies() []artifacts.Policy {
	it, err := w.tx.Get(tabTrust, "id")
	if err != nil {
		panic(err)
	}
	var out []artifacts.Policy
	for obj := it.Next(); obj != nil; obj = it.Next() {
		out = append(out, obj.(*api.TrustPolicy).Policy)
	}
	return out
}
