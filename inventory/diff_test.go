package inventory

import (
	"fmt"
	"reflect"
	"testing"
)

func TestDiff(t *testing.T) {
	old := whereHost()
	old.Filesystems = []Filesystem{{Device: "/dev/sda1", MountPoint: "/", FSType: "ext4", TotalBytes: 100, FreeBytes: 40}}
	old.NetworkInterfaces = []NetworkInterface{{Name: "eth0", MACAddress: "00:11:22:33:44:55", IPv4Addresses: []string{"192.0.2.10/24"}, MTUSize: 1500}}

	new := whereHost()
	new.Filesystems = []Filesystem{{Device: "/dev/sda1", MountPoint: "/", FSType: "ext4", TotalBytes: 100, FreeBytes: 7}} // free space only
	new.NetworkInterfaces = []NetworkInterface{{Name: "eth0", MACAddress: "00:11:22:33:44:55", IPv4Addresses: []string{"192.0.2.11/24"}, MTUSize: 9000}}
	new.OperatingSystem.Kernel = "6.1.0-26-amd64"
	new.Releases = map[string]string{"api": "1.5.0"}                                                  // worker removed
	new.Packages = append(new.Packages, Package{Name: "curl", Version: "7.88.1-10", Manager: "dpkg"}) // added
	new.Packages[1].Version = "3.0.15-1~deb12u1"
	new.Facts["rack"] = "c01"

	got := Diff(old, new)
	want := []Change{
		{Fact: "fact.rack", From: "b12", To: "c01"},
		{Fact: "interface.eth0.ipv4", From: "192.0.2.10/24", To: "192.0.2.11/24"},
		{Fact: "interface.eth0.mtu", From: "1500", To: "9000"},
		{Fact: "kernel", From: "6.1.0-25-amd64", To: "6.1.0-26-amd64"},
		{Fact: "package.curl", To: "7.88.1-10"},
		{Fact: "package.openssl", From: "3.0.14-1~deb12u2", To: "3.0.15-1~deb12u1"},
		{Fact: "release.api", From: "1.4.2", To: "1.5.0"},
		{Fact: "release.worker", From: "v1.10.0-rc1"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Diff:\n got %+v\nwant %+v", got, want)
	}
	if d := Diff(old, old); d != nil {
		t.Errorf("Diff of a system with itself = %+v, want none", d)
	}
}

func TestDiffFirstInventory(t *testing.T) {
	d := Diff(nil, whereHost())
	seen := map[string]string{}
	for _, c := range d {
		if c.From != "" {
			t.Errorf("%s: From = %q for a first inventory", c.Fact, c.From)
		}
		seen[c.Fact] = c.To
	}
	if seen["hostname"] != "web-1" || seen["package.openssl"] != "3.0.14-1~deb12u2" || seen["release.api"] != "1.4.2" {
		t.Errorf("first inventory changes = %v", seen)
	}
}

func TestConfigurationJoinsVersionsOfOnePackage(t *testing.T) {
	s := &System{HostName: "h", Packages: []Package{
		{Name: "libc6", Version: "2.36-9", Manager: "dpkg"},
		{Name: "zlib", Version: "1.2", Manager: "dpkg"},
		{Name: "libc6", Version: "2.36-8", Manager: "rpm"},
		{Name: "libc6", Version: "2.36-9", Manager: "rpm"},
	}}
	conf := Configuration(s)
	if got := conf["package.libc6"]; got != "2.36-8, 2.36-9" {
		t.Errorf("package.libc6 = %q, want both versions once each", got)
	}
	if got := conf["package.zlib"]; got != "1.2" {
		t.Errorf("package.zlib = %q", got)
	}
}

// BenchmarkDiff diffs two inventories of 500 packages of which 20 changed,
// as after a routine upgrade.
func BenchmarkDiff(b *testing.B) {
	for _, n := range []int{500, 5000} {
		old, new := &System{HostName: "h"}, &System{HostName: "h"}
		for i := range n {
			p := Package{Name: fmt.Sprintf("package-%05d", i), Version: "1.0." + fmt.Sprint(i), Manager: "dpkg"}
			old.Packages = append(old.Packages, p)
			if i%25 == 0 {
				p.Version += "+1"
			}
			new.Packages = append(new.Packages, p)
		}
		b.Run(fmt.Sprintf("packages=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if d := Diff(old, new); len(d) != n/25 {
					b.Fatalf("%d changes, want %d", len(d), n/25)
				}
			}
		})
	}
}
