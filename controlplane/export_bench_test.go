package controlplane

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/inventory"
)

// BenchmarkInventoryExport exports 10,000 hosts with 500 packages each, as
// the control plane holds them (inventory as stored JSON), in every
// format. Besides the time, it reports the most live heap the export
// itself held (measured after a forced GC every 500 hosts, outside the
// timed loop): the export streams, so that stays around one host's worth
// whatever the fleet's size.
func BenchmarkInventoryExport(b *testing.B) {
	hosts := fleetOf(b, 10000, 500)
	for _, format := range inventory.Formats {
		b.Run(format, func(b *testing.B) {
			var written countingWriter
			for b.Loop() {
				out, _ := inventory.NewWriter(format, &written)
				if err := writeExport(out, hosts, hostFilter{}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(written.n.Load())/float64(b.N)/(1<<20), "MiB/export")

			out, _ := inventory.NewWriter(format, io.Discard)
			probe := &heapProbe{Writer: out, every: 500}
			probe.start()
			if err := writeExport(probe, hosts, hostFilter{}); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(probe.peak)/(1<<20), "peak-live-MiB")
		})
	}
}

func fleetOf(tb testing.TB, n, packages int) []*api.Host {
	tb.Helper()
	hosts := make([]*api.Host, n)
	for i := range hosts {
		sys := inventory.System{HostName: fmt.Sprintf("host-%05d", i), SerialNumber: fmt.Sprint("SN", i),
			OperatingSystem: inventory.OperatingSystem{Name: "debian", Version: "12.7", Kernel: "6.1.0-25-amd64"},
			NetworkInterfaces: []inventory.NetworkInterface{{Name: "eth0", MACAddress: fmt.Sprintf("52:54:00:00:%02x:%02x", i>>8&0xff, i&0xff),
				IPv4Addresses: []string{fmt.Sprintf("10.0.%d.%d/16", i>>8&0xff, i&0xff)}}},
			Releases: map[string]string{"web": "2.1.0"}}
		for p := range packages {
			sys.Packages = append(sys.Packages, inventory.Package{Name: fmt.Sprintf("package-%04d", p), Version: fmt.Sprintf("1.%d-1+deb12u1", p), Manager: "dpkg"})
		}
		raw, err := json.Marshal(sys)
		if err != nil {
			tb.Fatal(err)
		}
		hosts[i] = &api.Host{ID: sys.HostName, Labels: map[string]string{"env": "prod"}, Status: api.HostUp,
			Inventory: raw, ChangedAt: time.Unix(int64(i), 0)}
	}
	return hosts
}

type countingWriter struct{ n atomic.Int64 }

func (c *countingWriter) Write(p []byte) (int, error) {
	c.n.Add(int64(len(p)))
	return len(p), nil
}

var _ io.Writer = (*countingWriter)(nil)

// heapProbe passes records to Writer and, every so many, measures the
// live heap above where it started.
type heapProbe struct {
	inventory.Writer
	every, n   int
	base, peak uint64
}

func (p *heapProbe) live() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

func (p *heapProbe) start() { p.base = p.live() }

func (p *heapProbe) Write(r inventory.Record) error {
	if p.n++; p.n%p.every == 0 {
		if l := p.live(); l > p.base {
			p.peak = max(p.peak, l-p.base)
		}
	}
	return p.Writer.Write(r)
}
