package controlplane

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/drover-dev/drover/artifacts"
	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/inventory"
	"github.com/drover-dev/drover/pki"
)

// hostFilter is what the host list and the inventory export select by:
// ?where=EXPR (inventory.ParseWhere) and ?since=RFC3339 (hosts whose
// configuration or status changed after that time).
type hostFilter struct {
	where inventory.Where
	since time.Time
	// running, when not nil, keeps hosts running one of these releases
	// (app@version): ?running_commit=SHA, the releases built from it.
	running map[string]bool
}

func (s *Server) parseHostFilter(r *http.Request) (hostFilter, error) {
	var f hostFilter
	q := r.URL.Query()
	if v := q.Get("running_commit"); v != "" {
		if len(v) < 7 || len(v) > 64 || strings.Trim(strings.ToLower(v), "0123456789abcdef") != "" {
			return f, api.Errorf(api.CodeInvalid, "running_commit: %q is not a commit id (7-64 hex digits)", v)
		}
		f.running = s.releasesBuiltFrom(strings.ToLower(v))
	}
	if v := q.Get("where"); v != "" {
		w, err := inventory.ParseWhere(v)
		if err != nil {
			return f, api.Errorf(api.CodeInvalid, "where: %v", err)
		}
		f.where = w
	}
	if v := q.Get("since"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return f, api.Errorf(api.CodeInvalid, "since: %q is not an RFC 3339 time such as 2030-01-02T15:04:05Z", v)
		}
		f.since = t
	}
	return f, nil
}

// match decodes h's inventory when the filter needs it and says whether h
// passes. The record it returns is valid only when ok.
func (f hostFilter) match(h *api.Host) (rec inventory.Record, ok bool) {
	if !f.since.IsZero() && !h.ChangedAt.After(f.since) && !h.StatusSince.After(f.since) {
		return rec, false
	}
	if f.running != nil && !runsAny(h, f.running) {
		return rec, false
	}
	rec = inventoryRecord(h)
	return rec, f.where.IsZero() || f.where.Match(inventory.Attributes(h.Labels, rec.System))
}

func (s *Server) listHosts(w http.ResponseWriter, r *http.Request, _ pki.Identity) error {
	f, err := s.parseHostFilter(r)
	if err != nil {
		return err
	}
	var out []*api.Host
	err = s.blocking(w, r, func(ws memdb.WatchSet) (index uint64) {
		all, index := s.store.Hosts(ws)
		out = out[:0]
		for _, h := range all {
			if _, ok := f.match(h); ok {
				out = append(out, h)
			}
		}
		return index
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, nonNil(out))
}

func (s *Server) getHost(w http.ResponseWriter, r *http.Request, _ pki.Identity) error {
	var out api.HostDetail
	err := s.blocking(w, r, func(ws memdb.WatchSet) uint64 {
		out.Host, _ = s.store.Host(ws, r.PathValue("id"))
		var index uint64
		out.History, index = s.store.HostHistory(ws, r.PathValue("id"))
		return max(index, s.store.TableIndex(nil, "hosts"))
	})
	if err != nil {
		return err
	}
	if out.Host == nil {
		return api.Errorf(api.CodeNotFound, "host %s is not enrolled", r.PathValue("id"))
	}
	out.History = nonNil(out.History)
	return writeJSON(w, http.StatusOK, out)
}

// exportInventory streams the inventory for a CMDB, one host at a time:
// ?format=csv|jsonl|servicenow, ?where= and ?since= as for the host list.
// The hosts come from one read of the state, so the export is consistent;
// only the host being written is decoded at any time.
func (s *Server) exportInventory(w http.ResponseWriter, r *http.Request, _ pki.Identity) error {
	format := r.URL.Query().Get("format")
	if format == "" {
		format = inventory.FormatCSV
	}
	f, err := s.parseHostFilter(r)
	if err != nil {
		return err
	}
	out, err := inventory.NewWriter(format, w)
	if err != nil {
		return api.Errorf(api.CodeInvalid, "%v", err)
	}
	hosts, index := s.store.Hosts(nil)
	w.Header().Set("Content-Type", inventory.ContentType(format))
	w.Header().Set(api.HeaderIndex, strconv.FormatUint(index, 10))
	return writeExport(out, hosts, f)
}

// writeExport writes the hosts f selects to out, decoding one at a time.
func writeExport(out inventory.Writer, hosts []*api.Host, f hostFilter) error {
	for _, h := range hosts {
		rec, ok := f.match(h)
		if !ok {
			continue
		}
		if err := out.Write(rec); err != nil {
			return err
		}
	}
	return out.Flush()
}

func runsAny(h *api.Host, releases map[string]bool) bool {
	for app, version := range h.Releases {
		if releases[app+"@"+version] {
			return true
		}
	}
	return false
}

// releasesBuiltFrom lists the releases whose signed manifest names a
// source commit beginning with commit.
func (s *Server) releasesBuiltFrom(commit string) map[string]bool {
	out := map[string]bool{}
	releases, _ := s.store.Releases(nil)
	for _, rel := range releases {
		m, err := artifacts.ParseManifest(rel.Manifest)
		if err == nil && m.Provenance != nil && strings.HasPrefix(strings.ToLower(m.Provenance.SourceCommit), commit) {
			out[rel.ID] = true
		}
	}
	return out
}

// inventoryRecord is the export record of h.
func inventoryRecord(h *api.Host) inventory.Record {
	rec := inventory.Record{Host: h.ID, Labels: h.Labels, Status: h.Status, LastSeen: h.LastReport,
		UpdatedAt: h.ChangedAt, DriftAt: h.DriftAt}
	if len(h.Inventory) > 0 {
		var sys inventory.System
		if json.Unmarshal(h.Inventory, &sys) == nil {
			rec.System = &sys
		}
	}
	if rec.System != nil && len(h.Releases) > 0 {
		rec.System.Releases = h.Releases // what the host reported last is newer
	}
	return rec
}
