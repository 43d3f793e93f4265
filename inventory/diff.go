package inventory

import (
	"slices"
	"strconv"
	"strings"
)

// Change is one configuration fact of a host that changed between two
// inventories. From is empty when the fact appeared, To when it went away.
type Change struct {
	Fact string `json:"fact"`
	From string `json:"from,omitempty"`
	To   string `json:"to,omitempty"`
}

// Configuration flattens the configuration of a host, what a CMDB records
// and what a change to is worth a line in the host's history: every fact
// Attributes lists, under the same names, plus
//
//	uuid                          UUID
//	sockets, cores, cpu_model     ProcessorSummary
//	interface.<name>.mac          each network interface's MAC address,
//	interface.<name>.ipv4, .ipv6  addresses (sorted, joined by ", "),
//	interface.<name>.mtu          and MTU
//	filesystem.<mount point>      "<device> <type> <size in bytes>"
//
// package.<name> holds every installed version of the package, sorted and
// joined by ", ", where Attributes keeps only the highest.
//
// What changes by the minute rather than by someone's action is left out:
// free space and the collection time.
func Configuration(sys *System) map[string]string {
	conf := make(map[string]string, 32+len(sys.Packages))
	addFacts(conf, sys)
	set := func(k, v string) {
		if v != "" {
			conf[k] = v
		}
	}
	set("uuid", sys.UUID)
	set("cpu_model", sys.ProcessorSummary.Model)
	set("sockets", count(sys.ProcessorSummary.Count))
	set("cores", count(sys.ProcessorSummary.CoreCount))
	for _, n := range sys.NetworkInterfaces {
		p := "interface." + n.Name + "."
		set(p+"mac", n.MACAddress)
		set(p+"ipv4", strings.Join(n.IPv4Addresses, ", "))
		set(p+"ipv6", strings.Join(n.IPv6Addresses, ", "))
		set(p+"mtu", count(n.MTUSize))
	}
	for _, f := range sys.Filesystems {
		set("filesystem."+f.MountPoint, f.Device+" "+f.FSType+" "+strconv.FormatInt(f.TotalBytes, 10))
	}
	// Several versions of one package (two architectures, two package
	// managers) are one fact. Normalize sorts Packages by manager then name,
	// so versions of a name are not adjacent: gather them first.
	var multi map[string][]string
	for _, p := range sys.Packages {
		k := "package." + p.Name
		if _, seen := multi[k]; seen {
			multi[k] = append(multi[k], p.Version)
			continue
		}
		if v, ok := conf[k]; ok && v != p.Version {
			if multi == nil {
				multi = map[string][]string{}
			}
			multi[k] = []string{v, p.Version}
			continue
		}
		set(k, p.Version)
	}
	for k, vs := range multi {
		slices.Sort(vs)
		conf[k] = strings.Join(slices.Compact(vs), ", ")
	}
	return conf
}

// Diff lists the configuration facts (see Configuration) that differ
// between old and new, sorted by fact. A nil old is a host seen for the
// first time: every fact of new is a change from nothing.
func Diff(old, new *System) []Change {
	var before map[string]string
	if old != nil {
		before = Configuration(old)
	}
	after := Configuration(new)
	var out []Change
	for k, v := range after {
		if before[k] != v {
			out = append(out, Change{Fact: k, From: before[k], To: v})
		}
	}
	for k, v := range before {
		if _, ok := after[k]; !ok {
			out = append(out, Change{Fact: k, From: v})
		}
	}
	slices.SortFunc(out, func(a, b Change) int { return strings.Compare(a.Fact, b.Fact) })
	return out
}
