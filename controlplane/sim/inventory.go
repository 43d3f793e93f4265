package sim

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/drover-dev/drover/inventory"
)

// inventoryFor makes a plausible inventory for simulated host number i:
// a Debian server with packages of its own version mix, so that hosts do
// not all share one digest. The server parses and normalizes it like any
// other.
func inventoryFor(name string, i, packages int, releases map[string]string, now time.Time) *inventory.System {
	h := fnv.New64a()
	_, _ = h.Write([]byte(name))
	seed := h.Sum64()
	sys := &inventory.System{
		HostName:     name,
		SerialNumber: fmt.Sprintf("SIM%012X", seed&0xffffffffffff),
		Manufacturer: "drover-sim",
		Model:        "simulated",
		UUID:         fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", uint32(seed), uint16(seed>>32), uint16(seed>>48)&0xfff, i&0xfff, seed&0xffffffffffff),
		ProcessorSummary: inventory.ProcessorSummary{
			Count: 1, CoreCount: 4 << (i % 3), LogicalProcessorCount: 8 << (i % 3), Model: "Simulated CPU @ 2.40GHz",
		},
		MemorySummary: inventory.MemorySummary{TotalSystemMemoryGiB: float64(int(8) << (i % 4))},
		OperatingSystem: inventory.OperatingSystem{
			Name: "debian", Version: "12.7", Family: "debian", Kernel: "6.1.0-25-amd64", Architecture: "x86_64",
		},
		Filesystems: []inventory.Filesystem{
			{Device: "/dev/sda1", MountPoint: "/", FSType: "ext4", TotalBytes: 100 << 30, FreeBytes: int64(40+i%50) << 30},
		},
		NetworkInterfaces: []inventory.NetworkInterface{{
			Name: "eth0", MACAddress: fmt.Sprintf("02:%02x:%02x:%02x:%02x:%02x", byte(seed>>32), byte(i>>24), byte(i>>16), byte(i>>8), byte(i)),
			IPv4Addresses: []string{fmt.Sprintf("10.%d.%d.%d/16", (i>>16)&0xff, (i>>8)&0xff, i&0xff)}, MTUSize: 1500,
		}},
		Releases:     releases,
		AgentVersion: "sim",
		CollectedAt:  now.UTC(),
	}
	for p := range packages {
		// Most hosts share most versions; a few lag behind.
		patch := 1
		if (seed>>(p%60))&7 == 0 {
			patch = 0
		}
		sys.Packages = append(sys.Packages, inventory.Package{
			Name: fmt.Sprintf("pkg-%04d", p), Version: fmt.Sprintf("%d.%d.%d-%d", 1+p%7, p%13, patch, 1+p%3), Manager: "dpkg",
		})
	}
	sys.Normalize()
	return sys
}

// InventorySize is the encoded size in bytes of a simulated inventory
// with the given number of packages.
func InventorySize(packages int) int {
	b, err := json.Marshal(inventoryFor("sim-00000", 0, packages, map[string]string{"simapp": "1.0.0"}, time.Now()))
	if err != nil {
		return 0
	}
	return len(b)
}
