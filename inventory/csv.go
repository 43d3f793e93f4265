package inventory

import (
	"encoding/csv"
	"fmt"
	"io"
	"time"
)

// Record is one host as the control plane knows it: identity and state
// from the control plane, plus the last System it reported (may be nil).
type Record struct {
	Host      string // drover host id
	Labels    map[string]string
	Status    string    // e.g. "online", "offline"
	LastSeen  time.Time // zero = never
	UpdatedAt time.Time // last configuration change (see Configuration)
	DriftAt   time.Time // last change that no rollout made; zero = none
	System    *System
}

// CSVColumns is the header of the CMDB export, in the order the cells of a
// row are written. The order is stable: columns are only ever added at the
// end. Do not modify it.
//
//	host                drover host id (Record.Host)
//	hostname            System.HostName
//	serial_number       System.SerialNumber
//	manufacturer        System.Manufacturer
//	model               System.Model
//	os_name             OperatingSystem.Name, e.g. debian
//	os_version          OperatingSystem.Version, e.g. 12.7
//	kernel              OperatingSystem.Kernel
//	architecture        OperatingSystem.Architecture, e.g. x86_64
//	cpu_count           ProcessorSummary.Count (sockets)
//	core_count          ProcessorSummary.CoreCount
//	logical_processors  ProcessorSummary.LogicalProcessorCount
//	cpu_model           ProcessorSummary.Model
//	memory_gib          MemorySummary.TotalSystemMemoryGiB, 2 decimals
//	ip_addresses        every interface's addresses without prefix length,
//	                    IPv4 then IPv6, each sorted, duplicates removed
//	mac_addresses       every interface's MAC address, sorted, duplicates removed
//	disks_total_gib     total size of the filesystems, each device counted
//	                    once, in GiB with 2 decimals
//	labels              Record.Labels as key=value, sorted by key
//	releases            System.Releases as application=version, sorted by key
//	agent_version       System.AgentVersion
//	status              Record.Status
//	last_seen           Record.LastSeen, RFC 3339 UTC
//	updated_at          Record.UpdatedAt, RFC 3339 UTC
//	drift_at            Record.DriftAt, RFC 3339 UTC
//
// Cells holding several values join them with ";". A time that is zero, a
// number that is zero (unknown), and every System column of a Record
// without a System are empty. A text cell whose first character is = + - @
// TAB or CR is prefixed with ' so that spreadsheets do not run it as a
// formula; numeric cells are written by this package and never need it.
var CSVColumns = []string{
	"host", "hostname", "serial_number", "manufacturer", "model",
	"os_name", "os_version", "kernel", "architecture",
	"cpu_count", "core_count", "logical_processors", "cpu_model", "memory_gib",
	"ip_addresses", "mac_addresses", "disks_total_gib",
	"labels", "releases", "agent_version",
	"status", "last_seen", "updated_at", "drift_at",
}

// CSVWriter streams Records as RFC 4180 CSV (CRLF line endings) under the
// CSVColumns header. It is not safe for concurrent use.
type CSVWriter struct {
	w      *csv.Writer
	header bool // the header has been written
}

// NewCSVWriter returns a CSVWriter writing to w. Call Flush when done.
func NewCSVWriter(w io.Writer) *CSVWriter {
	cw := csv.NewWriter(w)
	cw.UseCRLF = true
	return &CSVWriter{w: cw}
}

// Write writes r as one row, after the header if this is the first row.
// Output is buffered; Flush sends it.
func (c *CSVWriter) Write(r Record) error {
	if err := c.writeHeader(); err != nil {
		return err
	}
	if err := c.w.Write(csvRow(r)); err != nil {
		return fmt.Errorf("inventory: writing CSV row for %q: %w", r.Host, err)
	}
	return nil
}

// Flush writes any buffered data, and the header alone if no row was
// written, so that an export of no hosts is still a valid CSV file.
func (c *CSVWriter) Flush() error {
	if err := c.writeHeader(); err != nil {
		return err
	}
	c.w.Flush()
	if err := c.w.Error(); err != nil {
		return fmt.Errorf("inventory: flushing CSV: %w", err)
	}
	return nil
}

func (c *CSVWriter) writeHeader() error {
	if c.header {
		return nil
	}
	if err := c.w.Write(CSVColumns); err != nil {
		return fmt.Errorf("inventory: writing CSV header: %w", err)
	}
	c.header = true
	return nil
}
