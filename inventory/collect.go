package inventory

import (
	"context"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/shirou/gopsutil/v4/cpu"
	"github.com/shirou/gopsutil/v4/host"
	"github.com/shirou/gopsutil/v4/mem"
	"github.com/shirou/gopsutil/v4/net"
)

// CollectOptions tunes Collect.
type CollectOptions struct {
	// Now stamps CollectedAt; nil means time.Now.
	Now func() time.Time
	// Root is prepended to the paths Collect reads itself: /sys/class/dmi,
	// /var/lib/dpkg, /lib/apk, and rpm's --root. "" means "/". It does not
	// affect what gopsutil reads (host, CPU, memory, mounts, interfaces).
	Root string
	// SkipPackages leaves Packages empty.
	SkipPackages bool
}

// Collect gathers the inventory of the host it runs on. A part that cannot
// be read (DMI data readable only by root, no package database, a failing
// rpm) is left empty; Collect fails only if the host information itself
// cannot be read or ctx ends before it is done, since a partial inventory
// would look like a change. The result is normalised, and trimmed where
// needed so that it always passes Validate. Releases, AgentVersion and
// Facts are left for the agent to fill.
func Collect(ctx context.Context, opts CollectOptions) (*System, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("inventory: collect: %w", err)
	}
	info, err := host.InfoWithContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("inventory: reading host info: %w", err)
	}
	root := opts.Root
	if root == "" {
		root = "/"
	}
	s := &System{
		HostName: info.Hostname,
		OperatingSystem: OperatingSystem{
			Name:         info.Platform,
			Version:      info.PlatformVersion,
			Family:       info.PlatformFamily,
			Kernel:       info.KernelVersion,
			Architecture: info.KernelArch,
		},
		ProcessorSummary:  collectCPU(ctx),
		MemorySummary:     collectMemory(ctx),
		Filesystems:       collectFilesystems(ctx),
		NetworkInterfaces: collectInterfaces(ctx),
	}
	readDMI(root, s)
	if !opts.SkipPackages {
		s.Packages = collectPackages(ctx, root)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("inventory: collect: %w", err)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	s.CollectedAt = now().UTC()
	s.fit()
	return s, nil
}

func collectCPU(ctx context.Context) ProcessorSummary {
	var p ProcessorSummary
	if n, err := cpu.CountsWithContext(ctx, true); err == nil && n > 0 {
		p.LogicalProcessorCount = n
	}
	if n, err := cpu.CountsWithContext(ctx, false); err == nil && n > 0 {
		p.CoreCount = n
	}
	infos, err := cpu.InfoWithContext(ctx)
	if err != nil {
		infos = nil
	}
	sockets := make(map[string]bool)
	for _, c := range infos {
		if p.Model == "" {
			p.Model = strings.TrimSpace(c.ModelName)
		}
		if c.PhysicalID != "" {
			sockets[c.PhysicalID] = true
		}
	}
	switch {
	case len(sockets) > 0:
		p.Count = len(sockets)
	case p.LogicalProcessorCount > 0 || len(infos) > 0:
		p.Count = 1
	}
	return p
}

func collectMemory(ctx context.Context) MemorySummary {
	v, err := mem.VirtualMemoryWithContext(ctx)
	if err != nil {
		return MemorySummary{}
	}
	return MemorySummary{TotalSystemMemoryGiB: gib(v.Total)}
}

// gib converts bytes to GiB rounded to 2 decimals.
func gib(b uint64) float64 {
	return math.Round(float64(b)/(1<<30)*100) / 100
}

func collectInterfaces(ctx context.Context) []NetworkInterface {
	ifs, err := net.InterfacesWithContext(ctx)
	if err != nil {
		return nil
	}
	var nis []NetworkInterface
	for _, i := range ifs {
		if slices.Contains(i.Flags, "loopback") {
			continue
		}
		n := NetworkInterface{Name: i.Name, MACAddress: i.HardwareAddr, MTUSize: i.MTU}
		for _, a := range i.Addrs {
			p, err := netip.ParsePrefix(a.Addr)
			if err != nil {
				continue
			}
			if p.Addr().Is4() {
				n.IPv4Addresses = append(n.IPv4Addresses, p.String())
			} else {
				n.IPv6Addresses = append(n.IPv6Addresses, p.String())
			}
		}
		nis = append(nis, n)
	}
	return nis
}
