package inventory

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"
)

func exportAll(t *testing.T, format string, records ...Record) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(format, &buf)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range records {
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestNewWriterRefusesUnknownFormat(t *testing.T) {
	_, err := NewWriter("xml", io.Discard)
	if err == nil || !strings.Contains(err.Error(), "allowed values are csv, jsonl, servicenow") {
		t.Errorf("err = %v; want the allowed formats named", err)
	}
}

func TestJSONLRoundTrip(t *testing.T) {
	changed := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	in := []Record{
		{Host: "h-01", Labels: map[string]string{"env": "prod"}, Status: "up", UpdatedAt: changed, System: sample()},
		{Host: "h-02"}, // enrolled, no inventory yet
	}
	out := exportAll(t, FormatJSONL, in...)
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines; want one per host:\n%s", len(lines), out)
	}
	var got HostRecord
	if err := json.Unmarshal([]byte(lines[0]), &got); err != nil {
		t.Fatal(err)
	}
	if got.Host != "h-01" || got.UpdatedAt == nil || !got.UpdatedAt.Equal(changed) || got.LastSeen != nil {
		t.Errorf("record = %+v", got)
	}
	if !reflect.DeepEqual(got.System, in[0].System) {
		t.Errorf("system did not round-trip:\n got %+v\nwant %+v", got.System, in[0].System)
	}
	if lines[1] != `{"host":"h-02"}` {
		t.Errorf("host without inventory = %s", lines[1])
	}
}

func TestServiceNowPayload(t *testing.T) {
	s := sample()
	s.Packages = append(s.Packages, Package{Name: "openssl", Version: "3.0.14-1~deb12u2", Manager: "rpm"}) // same software twice
	out := exportAll(t, FormatServiceNow, Record{Host: "h-01", System: s}, Record{Host: "h-02"})
	sc := bufio.NewScanner(bytes.NewReader(out))
	var payloads []IREPayload
	for sc.Scan() {
		var p IREPayload
		if err := json.Unmarshal(sc.Bytes(), &p); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		payloads = append(payloads, p)
	}
	if len(payloads) != 2 {
		t.Fatalf("%d payloads; want one per host", len(payloads))
	}
	p := payloads[0]
	host := p.Items[0]
	want := map[string]string{
		"name": "web-1", "host_name": "web-1", "serial_number": "SN123", "manufacturer": "Dell Inc.",
		"model_number": "PowerEdge R650", "os": "debian", "os_version": "12.7", "kernel_release": "6.1.0-25-amd64",
		"cpu_count": "2", "cpu_core_count": "32", "cpu_name": "Intel(R) Xeon(R) Gold 6338",
		"ram": "257587", "disk_space": "1124", "ip_address": "192.0.2.10", "mac_address": "52:54:00:12:34:56",
	}
	if host.ClassName != "cmdb_ci_linux_server" || host.InternalID != "h-01" || !reflect.DeepEqual(host.Values, want) {
		t.Errorf("host item = %+v\nwant values %v", host, want)
	}
	if len(host.Lookup) != 2 || host.Lookup[0].Values["mac_address"] != "52:54:00:12:34:56" || host.Lookup[0].Values["ip_address"] != "192.0.2.10" {
		t.Errorf("network adapter lookups = %+v", host.Lookup)
	}
	// 2 releases + 3 distinct packages, each related to the host.
	if len(p.Items) != 6 || len(p.Relations) != 5 {
		t.Fatalf("%d items, %d relations; want 6 and 5: %+v", len(p.Items), len(p.Relations), p)
	}
	if it := p.Items[1]; it.ClassName != "cmdb_ci_appl" || it.Values["name"] != "api" || it.Values["version"] != "1.4.2" {
		t.Errorf("first software item = %+v", it)
	}
	for i, r := range p.Relations {
		if r.Parent != i+1 || r.Child != 0 || r.Type != "Runs on::Runs" {
			t.Errorf("relation %d = %+v", i, r)
		}
	}
	if h2 := payloads[1]; h2.Items[0].ClassName != "cmdb_ci_server" || h2.Items[0].Values["name"] != "h-02" || h2.Relations == nil {
		t.Errorf("host without inventory = %+v", h2)
	}
}

func TestServiceNowClass(t *testing.T) {
	for os, want := range map[string]string{
		"debian": "cmdb_ci_linux_server", "rhel": "cmdb_ci_linux_server", "windows": "cmdb_ci_win_server",
		"FreeBSD": "cmdb_ci_unix_server", "darwin": "cmdb_ci_osx_server", "": "cmdb_ci_server",
	} {
		if got := ServiceNowClass(os); got != want {
			t.Errorf("ServiceNowClass(%q) = %q; want %q", os, got, want)
		}
	}
}

// TestExportsHostileContent: whatever a host reports (within what Validate
// lets through), every export stays well formed and says exactly that.
func TestExportsHostileContent(t *testing.T) {
	hostile := []string{"=cmd|' /C calc'!A0", "+1", "-2", "@SUM(A1)", "a,b", `say "hi"`, "line1\nline2", "tab\there", "</script>", "\u2028"}
	s := sample()
	s.Model = strings.Join(hostile, " ")
	s.Manufacturer = hostile[0]
	s.Facts = map[string]string{}
	for i, v := range hostile {
		s.Facts[fmt.Sprint("k", i)] = v
	}
	s.Releases = map[string]string{"app": "=1+1"}
	rec := Record{Host: "h-01", Labels: map[string]string{"team": "@ops"}, System: s}
	if err := s.Validate(); err != nil {
		t.Fatalf("the hostile sample is not valid: %v", err)
	}

	_, rows := export(t, rec)
	got := cells(t, rows[1])
	if got["manufacturer"] != "'"+hostile[0] || got["labels"] != "team=@ops" || got["releases"] != "app==1+1" {
		t.Errorf("CSV cells: manufacturer %q labels %q releases %q", got["manufacturer"], got["labels"], got["releases"])
	}

	var back HostRecord
	if err := json.Unmarshal(bytes.TrimSpace(exportAll(t, FormatJSONL, rec)), &back); err != nil {
		t.Fatal(err)
	}
	if back.System.Model != s.Model || !reflect.DeepEqual(back.System.Facts, s.Facts) {
		t.Errorf("JSON Lines changed the values: %q", back.System.Model)
	}

	line := exportAll(t, FormatServiceNow, rec)
	if bytes.Count(line, []byte("\n")) != 1 {
		t.Errorf("a ServiceNow payload spans several lines: %q", line)
	}
	var p IREPayload
	if err := json.Unmarshal(line, &p); err != nil || p.Items[0].Values["model_number"] != s.Model {
		t.Errorf("ServiceNow payload: %v %q", err, p.Items[0].Values["model_number"])
	}
}

// TestExportStreams writes many hosts with many packages each and checks
// that the writers keep none of them: the live heap after a collection
// does not grow with the records written.
func TestExportStreams(t *testing.T) {
	rec := Record{Host: "h", System: manyPackages(500)}
	live := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	for _, format := range Formats {
		w, _ := NewWriter(format, io.Discard)
		before := live()
		for range 300 {
			if err := w.Write(rec); err != nil {
				t.Fatal(err)
			}
		}
		// 300 records of ~30 kB each: a writer that kept them would
		// hold about 9 MB.
		if after := live(); after > before+2<<20 {
			t.Errorf("%s: live heap grew by %d kB over 300 records", format, (after-before)>>10)
		}
		w.Flush()
	}
}

func manyPackages(n int) *System {
	s := sample()
	s.Packages = nil
	for i := range n {
		s.Packages = append(s.Packages, Package{Name: fmt.Sprintf("package-%04d", i), Version: fmt.Sprintf("1.%d-1", i), Manager: "dpkg"})
	}
	return s
}

// BenchmarkExport is the per-host cost of each export format for a host
// with 500 packages; the control plane's export of 10,000 hosts is ten
// thousand of these plus decoding each stored inventory.
func BenchmarkExport(b *testing.B) {
	rec := Record{Host: "h", System: manyPackages(500)}
	for _, format := range Formats {
		b.Run(format, func(b *testing.B) {
			w, _ := NewWriter(format, io.Discard)
			b.ReportAllocs()
			for b.Loop() {
				if err := w.Write(rec); err != nil {
					b.Fatal(err)
				}
			}
			w.Flush()
		})
	}
}
