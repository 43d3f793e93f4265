package inventory

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
	"time"
)

// Export formats, as named on the command line and in the API.
const (
	FormatCSV        = "csv"
	FormatJSONL      = "jsonl"
	FormatServiceNow = "servicenow"
)

// Formats lists the export formats.
var Formats = []string{FormatCSV, FormatJSONL, FormatServiceNow}

// Writer streams Records in one export format: Write each, then Flush.
// Nothing but the current record is held in memory.
type Writer interface {
	Write(Record) error
	Flush() error
}

// NewWriter returns the Writer for format, one of Formats.
func NewWriter(format string, w io.Writer) (Writer, error) {
	switch format {
	case FormatCSV:
		return NewCSVWriter(w), nil
	case FormatJSONL:
		return newLineWriter(w, jsonRecord), nil
	case FormatServiceNow:
		return newLineWriter(w, serviceNowPayload), nil
	}
	return nil, fmt.Errorf("format %q: allowed values are %s", format, strings.Join(Formats, ", "))
}

// ContentType is the media type of an export in format.
func ContentType(format string) string {
	if format == FormatCSV {
		return "text/csv; charset=utf-8"
	}
	return "application/x-ndjson"
}

// lineWriter writes one JSON document per record, each on its own line.
type lineWriter struct {
	w      *bufio.Writer
	enc    *json.Encoder
	render func(Record) any
}

func newLineWriter(w io.Writer, render func(Record) any) *lineWriter {
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	return &lineWriter{w: bw, enc: enc, render: render}
}

func (l *lineWriter) Write(r Record) error {
	if err := l.enc.Encode(l.render(r)); err != nil {
		return fmt.Errorf("inventory: writing host %q: %w", r.Host, err)
	}
	return nil
}

func (l *lineWriter) Flush() error { return l.w.Flush() }

// HostRecord is one line of the JSON Lines export: the whole record.
type HostRecord struct {
	Host      string            `json:"host"`
	Labels    map[string]string `json:"labels,omitempty"`
	Status    string            `json:"status,omitempty"`
	LastSeen  *time.Time        `json:"last_seen,omitempty"`
	UpdatedAt *time.Time        `json:"updated_at,omitempty"`
	DriftAt   *time.Time        `json:"drift_at,omitempty"`
	System    *System           `json:"system,omitempty"`
}

func jsonRecord(r Record) any {
	out := HostRecord{Host: r.Host, Labels: r.Labels, Status: r.Status,
		LastSeen: optTime(r.LastSeen), UpdatedAt: optTime(r.UpdatedAt), DriftAt: optTime(r.DriftAt), System: r.System}
	if s := r.System; s != nil && (math.IsNaN(s.MemorySummary.TotalSystemMemoryGiB) || math.IsInf(s.MemorySummary.TotalSystemMemoryGiB, 0)) {
		c := *s // JSON has no NaN; Validate refuses it, but a Record may come from elsewhere
		c.MemorySummary.TotalSystemMemoryGiB = 0
		out.System = &c
	}
	return out
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

// ServiceNow Identification and Reconciliation (IRE) payloads: one per
// host, each a complete request body for POST /api/now/identifyreconcile.
// docs/cmdb.md gives the field mapping.

// IREPayload is the body the IRE API takes.
type IREPayload struct {
	Items     []IREItem     `json:"items"`
	Relations []IRERelation `json:"relations"`
}

// IREItem is one configuration item; Lookup lists related records IRE may
// identify it by (its network adapters).
type IREItem struct {
	ClassName  string            `json:"className"`
	InternalID string            `json:"internal_id,omitempty"`
	Values     map[string]string `json:"values"`
	Lookup     []IREItem         `json:"lookup,omitempty"`
}

// IRERelation relates two items of the same payload by their index.
type IRERelation struct {
	Parent int    `json:"parent"`
	Child  int    `json:"child"`
	Type   string `json:"type"`
}

type irePayload struct {
	Items     []any         `json:"items"`
	Relations []IRERelation `json:"relations"`
}

// ireSoftware is an IREItem of software, as encoded.
type ireSoftware struct {
	ClassName string         `json:"className"`
	Values    softwareValues `json:"values"`
}

type softwareValues struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// The relation of software to the host it runs on: software is the parent.
const ireRunsOn = "Runs on::Runs"

// ServiceNowClass is the CMDB class of a host running the operating
// system named osName (OperatingSystem.Name, or Family).
func ServiceNowClass(osName string) string {
	switch strings.ToLower(osName) {
	case "":
		return "cmdb_ci_server"
	case "windows":
		return "cmdb_ci_win_server"
	case "darwin", "macos":
		return "cmdb_ci_osx_server"
	case "freebsd", "openbsd", "netbsd", "solaris", "illumos", "aix", "hpux":
		return "cmdb_ci_unix_server"
	}
	return "cmdb_ci_linux_server" // every Linux distribution id
}

func serviceNowPayload(r Record) any {
	s := r.System
	if s == nil {
		s = &System{}
	}
	name := s.HostName
	if name == "" {
		name = r.Host
	}
	host := IREItem{
		ClassName:  ServiceNowClass(s.OperatingSystem.Name),
		InternalID: r.Host,
		Values:     map[string]string{"name": name},
	}
	set := func(k, v string) {
		if v != "" {
			host.Values[k] = v
		}
	}
	set("host_name", s.HostName)
	set("serial_number", s.SerialNumber)
	set("manufacturer", s.Manufacturer)
	set("model_number", s.Model)
	set("os", s.OperatingSystem.Name)
	set("os_version", s.OperatingSystem.Version)
	set("kernel_release", s.OperatingSystem.Kernel)
	set("cpu_count", count(s.ProcessorSummary.Count))
	set("cpu_core_count", count(s.ProcessorSummary.CoreCount))
	set("cpu_name", s.ProcessorSummary.Model)
	if m := s.MemorySummary.TotalSystemMemoryGiB; m > 0 && !math.IsInf(m, 0) {
		set("ram", fmt.Sprint(int64(math.Round(m*1024)))) // MB
	}
	if d := disksGiB(s); d > 0 && !math.IsInf(d, 0) {
		set("disk_space", fmt.Sprint(int64(math.Round(d)))) // GB
	}
	if ips := strings.Split(ipAddresses(s), ";"); ips[0] != "" {
		set("ip_address", ips[0])
	}
	if macs := strings.Split(macAddresses(s), ";"); macs[0] != "" {
		set("mac_address", macs[0])
	}
	for _, n := range s.NetworkInterfaces {
		if n.MACAddress == "" {
			continue
		}
		adapter := IREItem{ClassName: "cmdb_ci_network_adapter", Values: map[string]string{"name": n.Name, "mac_address": n.MACAddress}}
		if ips := bareSorted(n.IPv4Addresses); len(ips) > 0 {
			adapter.Values["ip_address"] = ips[0]
		}
		host.Lookup = append(host.Lookup, adapter)
	}

	// Encoded as IREPayload; software items are structs, not maps, as
	// there are hundreds per host and maps encode slowly.
	p := irePayload{Items: []any{host}, Relations: []IRERelation{}}
	software := func(class, name, version string) {
		p.Items = append(p.Items, ireSoftware{ClassName: class, Values: softwareValues{Name: name, Version: version}})
		p.Relations = append(p.Relations, IRERelation{Parent: len(p.Items) - 1, Child: 0, Type: ireRunsOn})
	}
	for _, app := range slices.Sorted(maps.Keys(s.Releases)) {
		software("cmdb_ci_appl", app, s.Releases[app])
	}
	// One item per name and version: the same package built for two
	// architectures is one piece of software to the CMDB.
	seen := make(map[[2]string]bool, len(s.Packages))
	for _, pkg := range s.Packages {
		k := [2]string{pkg.Name, pkg.Version}
		if !seen[k] {
			seen[k] = true
			software("cmdb_ci_spkg", pkg.Name, pkg.Version)
		}
	}
	return p
}
