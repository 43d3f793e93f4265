package state

import memdb "github.com/hashicorp/go-memdb"

// Table names.
const (
	tabHosts       = "hosts"
	tabTokens      = "tokens"
	tabPayloads    = "payloads"
	tabTrustLog    = "trust_log"
	tabWindows     = "windows"
	tabReleases    = "releases"
	tabRollouts    = "rollouts"
	tabDeployments = "deployments"
	tabTrust       = "trust"
	tabIdempotent  = "idempotent"
	tabOperators   = "operators"
	tabRevocations = "revocations"
	tabFreezes     = "freezes"
	tabSettings    = "settings"
	tabAudit       = "audit"
	tabCursors     = "webhook_cursors"
	tabHostChanges = "host_changes"
	tabEnvs        = "environments"
	tabLifecycles  = "lifecycles"
	tabJobs        = "jobs"
	tabIndex       = "index"
)

func idIndex(field string) *memdb.IndexSchema {
	return &memdb.IndexSchema{Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: field}}
}

func fieldIndex(name, field string) *memdb.IndexSchema {
	return &memdb.IndexSchema{Name: name, Indexer: &memdb.StringFieldIndex{Field: field}}
}

func table(name, idField string, extra ...*memdb.IndexSchema) *memdb.TableSchema {
	t := &memdb.TableSchema{Name: name, Indexes: map[string]*memdb.IndexSchema{"id": idIndex(idField)}}
	for _, ix := range extra {
		t.Indexes[ix.Name] = ix
	}
	return t
}

func schema() *memdb.DBSchema {
	tables := []*memdb.TableSchema{
		table(tabHosts, "ID"),
		table(tabHostChanges, "ID", fieldIndex("host", "Host")),
		table(tabEnvs, "Name"),
		table(tabLifecycles, "Name"),
		table(tabJobs, "ID", fieldIndex("host", "Host"), fieldIndex("release", "Release")),
		table(tabTokens, "ID"),
		table(tabPayloads, "SHA256"),
		table(tabTrustLog, "ID", fieldIndex("app", "App")),
		table(tabWindows, "Name"),
		table(tabReleases, "ID", fieldIndex("app", "App")),
		table(tabRollouts, "ID", fieldIndex("state", "State")),
		table(tabDeployments, "ID", fieldIndex("host", "Host"), fieldIndex("rollout", "Rollout")),
		table(tabTrust, "App"),
		table(tabIdempotent, "Key"),
		table(tabOperators, "Name"),
		table(tabRevocations, "Serial"),
		table(tabFreezes, "Name"),
		table(tabSettings, "ID"),
		table(tabAudit, "ID", fieldIndex("subject", "Subject")),
		table(tabCursors, "URL"),
		table(tabIndex, "Table"),
	}
	s := &memdb.DBSchema{Tables: map[string]*memdb.TableSchema{}}
	for _, t := range tables {
		s.Tables[t.Name] = t
	}
	return s
}

// snapshotTables is every table, in the order snapshots write them.
var snapshotTables = []string{tabHosts, tabTokens, tabPayloads, tabReleases, tabRollouts, tabDeployments, tabTrust, tabTrustLog,
	tabIdempotent, tabOperators, tabRevocations, tabWindows, tabFreezes, tabSettings, tabAudit, tabCursors, tabHostChanges, tabEnvs, tabLifecycles, tabJobs, tabIndex}
