package inventory

import (
	"bytes"
	"encoding/csv"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// export writes records through a CSVWriter and reads the result back.
func export(t *testing.T, records ...Record) (raw string, rows [][]string) {
	t.Helper()
	var buf bytes.Buffer
	w := NewCSVWriter(&buf)
	for _, r := range records {
		if err := w.Write(r); err != nil {
			t.Fatalf("Write: %v", err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	rows, err := csv.NewReader(strings.NewReader(buf.String())).ReadAll()
	if err != nil {
		t.Fatalf("reading back %q: %v", buf.String(), err)
	}
	return buf.String(), rows
}

// cells maps column name to cell for one row.
func cells(t *testing.T, row []string) map[string]string {
	t.Helper()
	if len(row) != len(CSVColumns) {
		t.Fatalf("row has %d cells, want %d", len(row), len(CSVColumns))
	}
	m := make(map[string]string)
	for i, c := range CSVColumns {
		m[c] = row[i]
	}
	return m
}

func TestCSVRow(t *testing.T) {
	s := sample()
	s.NetworkInterfaces = append(s.NetworkInterfaces, NetworkInterface{Name: "bond0", MACAddress: "52:54:00:12:34:56", IPv4Addresses: []string{"192.0.2.10/24"}})
	s.Filesystems = append(s.Filesystems, Filesystem{Device: "/dev/sda1", MountPoint: "/var/lib/docker", TotalBytes: 100 << 30})
	raw, rows := export(t, Record{
		Host:      "h-01",
		Labels:    map[string]string{"zone": "eu-1", "env": "prod"},
		Status:    "online",
		LastSeen:  time.Date(2024, 10, 1, 14, 0, 0, 5, time.FixedZone("CEST", 2*3600)),
		UpdatedAt: time.Date(2024, 9, 30, 8, 0, 0, 0, time.UTC),
		System:    s,
	})
	if len(rows) != 2 || !slices.Equal(rows[0], CSVColumns) {
		t.Fatalf("rows = %q, want header and one row", rows)
	}
	if !strings.HasSuffix(raw, "\r\n") || strings.Count(raw, "\r\n") != 2 {
		t.Errorf("output does not use CRLF line endings: %q", raw)
	}
	want := map[string]string{
		"host": "h-01", "hostname": "web-1", "serial_number": "SN123", "manufacturer": "Dell Inc.",
		"model": "PowerEdge R650", "os_name": "debian", "os_version": "12.7", "kernel": "6.1.0-25-amd64",
		"architecture": "x86_64", "cpu_count": "2", "core_count": "32", "logical_processors": "64",
		"cpu_model": "Intel(R) Xeon(R) Gold 6338", "memory_gib": "251.55",
		"ip_addresses":    "192.0.2.10;192.0.2.9;198.51.100.7;2001:db8::10;fe80::1",
		"mac_addresses":   "52:54:00:12:34:56;52:54:00:12:34:57",
		"disks_total_gib": "1124.00", // /dev/sda1 counted once: 100 + 1024
		"labels":          "env=prod;zone=eu-1", "releases": "api=1.4.2;worker=1.4.1",
		"agent_version": "0.1.0", "status": "online",
		"last_seen": "2024-10-01T12:00:00Z", "updated_at": "2024-09-30T08:00:00Z",
	}
	got := cells(t, rows[1])
	for _, c := range CSVColumns {
		if got[c] != want[c] {
			t.Errorf("%s = %q, want %q", c, got[c], want[c])
		}
	}
}

func TestCSVNilSystem(t *testing.T) {
	_, rows := export(t, Record{Host: "h-02", Labels: map[string]string{"env": "dev"}, Status: "offline"})
	got := cells(t, rows[1])
	for _, c := range CSVColumns {
		want := ""
		switch c {
		case "host":
			want = "h-02"
		case "labels":
			want = "env=dev"
		case "status":
			want = "offline"
		}
		if got[c] != want {
			t.Errorf("%s = %q, want %q", c, got[c], want)
		}
	}
}

func TestCSVQuotingRoundTrip(t *testing.T) {
	tests := []string{
		`say "hi"`,
		"a,b",
		"line1\nline2",
		` leading space`,
		`"`,
		"semi;colon",
		"ünïcödé",
	}
	for _, v := range tests {
		s := sample()
		s.Model = v
		_, rows := export(t, Record{Host: v, System: s})
		got := cells(t, rows[1])
		if got["host"] != v || got["model"] != v {
			t.Errorf("%q read back as host %q, model %q", v, got["host"], got["model"])
		}
	}
}

func TestCSVInjection(t *testing.T) {
	tests := []struct{ in, want, wantLabels string }{
		{"=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")=x"},
		{"+1+1", "'+1+1", "'+1+1=x"},
		{"-2+3", "'-2+3", "'-2+3=x"},
		{"@SUM(A1)", "'@SUM(A1)", "'@SUM(A1)=x"},
		{"\t=1", "'\t=1", "'\t=1=x"},
		{"\r=1", "'=1", "'=1=x"}, // csv.Writer with UseCRLF drops a lone CR
		{"a=1", "a=1", "a=1=x"},
		{"'quoted", "'quoted", "'quoted=x"},
		{"", "", "'=x"}, // an empty label key would start the cell with =
	}
	for _, tt := range tests {
		s := sample()
		s.Manufacturer = tt.in
		_, rows := export(t, Record{Host: tt.in, Status: tt.in, Labels: map[string]string{tt.in: "x"}, System: s})
		got := cells(t, rows[1])
		for _, c := range []string{"host", "manufacturer", "status"} {
			if got[c] != tt.want {
				t.Errorf("%s for %q = %q, want %q", c, tt.in, got[c], tt.want)
			}
		}
		if got["labels"] != tt.wantLabels {
			t.Errorf("labels for %q = %q, want %q", tt.in, got["labels"], tt.wantLabels)
		}
	}
	// Numbers are written as they are, never prefixed.
	_, rows := export(t, Record{Host: "h", System: sample()})
	if got := cells(t, rows[1]); got["cpu_count"] != "2" || got["memory_gib"] != "251.55" {
		t.Errorf("numeric cells = %q, %q", got["cpu_count"], got["memory_gib"])
	}
}

func TestCSVHeaderOnce(t *testing.T) {
	_, rows := export(t)
	if len(rows) != 1 || !slices.Equal(rows[0], CSVColumns) {
		t.Errorf("empty export = %q, want the header alone", rows)
	}
	_, rows = export(t, Record{Host: "a"}, Record{Host: "b"}, Record{Host: "c"})
	if len(rows) != 4 || rows[3][0] != "c" {
		t.Errorf("three records gave %d rows", len(rows))
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestCSVWriteError(t *testing.T) {
	w := NewCSVWriter(failingWriter{})
	if err := w.Write(Record{Host: "a"}); err != nil {
		t.Fatalf("buffered Write failed early: %v", err)
	}
	if err := w.Flush(); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("Flush = %v, want the writer's error", err)
	}
}
