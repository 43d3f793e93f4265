// Package inventory is the host inventory model of drover: what an agent
// reports about its host, how it is collected there (Collect), how the
// control plane checks it when it arrives from the network (Parse, Validate),
// and how it is exported for the CMDB (CSVWriter).
//
// The JSON names follow the DMTF Redfish ComputerSystem schema wherever
// Redfish has the property, so that tools that know Redfish recognise them.
// Values are normalised (System.Normalize) so that two equal hosts encode to
// equal JSON, and System.Digest tells an agent whether its inventory changed
// since it last sent it.
package inventory

import (
	"errors"
	"time"
)

// Errors returned by this package. They are wrapped with context (the field
// at fault, the underlying decoder error); test for them with errors.Is.
var (
	// ErrTooLarge: the encoded inventory is longer than MaxSystemBytes.
	ErrTooLarge = errors.New("inventory: input too large")
	// ErrSyntax: the input is not a single JSON object of the System schema
	// (bad syntax, unknown or duplicate field, wrong type, trailing data).
	ErrSyntax = errors.New("inventory: malformed JSON")
	// ErrInvalidUTF8: a string is not valid UTF-8.
	ErrInvalidUTF8 = errors.New("inventory: invalid UTF-8")
	// ErrTooLong: a string or map key is longer than its limit.
	ErrTooLong = errors.New("inventory: value too long")
	// ErrTooMany: a list or map has more entries than its limit.
	ErrTooMany = errors.New("inventory: too many entries")
	// ErrOutOfRange: a number is negative or not finite.
	ErrOutOfRange = errors.New("inventory: number out of range")
	// ErrMissing: a required value (HostName) is empty.
	ErrMissing = errors.New("inventory: required value missing")
)

// MaxSystemBytes is the largest encoded System that Parse accepts.
const MaxSystemBytes = 4 << 20

// Limits enforced by Validate.
const (
	maxString      = 1024  // bytes in any string value
	maxKey         = 128   // bytes in a Facts or Releases key
	maxInterfaces  = 256   // entries in NetworkInterfaces
	maxAddresses   = 64    // entries in each IPv4Addresses and IPv6Addresses list
	maxFilesystems = 256   // entries in Filesystems
	maxPackages    = 20000 // entries in Packages
	maxMapEntries  = 256   // entries in Facts and in Releases
)

// System is the inventory of one host, named after the Redfish
// ComputerSystem resource.
type System struct {
	HostName          string             `json:"HostName"`
	SerialNumber      string             `json:"SerialNumber,omitempty"`
	Manufacturer      string             `json:"Manufacturer,omitempty"`
	Model             string             `json:"Model,omitempty"`
	UUID              string             `json:"UUID,omitempty"`
	ProcessorSummary  ProcessorSummary   `json:"ProcessorSummary"`
	MemorySummary     MemorySummary      `json:"MemorySummary"`
	OperatingSystem   OperatingSystem    `json:"OperatingSystem"`
	Filesystems       []Filesystem       `json:"Filesystems,omitempty"`
	NetworkInterfaces []NetworkInterface `json:"NetworkInterfaces,omitempty"`
	Packages          []Package          `json:"Packages,omitempty"`
	// Releases maps each drover-managed application to its deployed
	// version. The agent fills it; Collect does not.
	Releases map[string]string `json:"Releases,omitempty"`
	// AgentVersion is the version of the reporting agent; the agent fills it.
	AgentVersion string `json:"AgentVersion,omitempty"`
	// Facts are custom facts; the agent fills them.
	Facts       map[string]string `json:"Facts,omitempty"`
	CollectedAt time.Time         `json:"CollectedAt"`
}

// ProcessorSummary summarises the processors, as in Redfish.
type ProcessorSummary struct {
	Count                 int    `json:"Count"` // sockets if known, else 1
	CoreCount             int    `json:"CoreCount"`
	LogicalProcessorCount int    `json:"LogicalProcessorCount"`
	Model                 string `json:"Model,omitempty"`
}

// MemorySummary summarises the memory, as in Redfish.
type MemorySummary struct {
	TotalSystemMemoryGiB float64 `json:"TotalSystemMemoryGiB"` // rounded to 2 decimals
}

// OperatingSystem describes the running operating system.
type OperatingSystem struct {
	Name         string `json:"Name,omitempty"`         // distribution id, e.g. "debian"
	Version      string `json:"Version,omitempty"`      // e.g. "12.7"
	Family       string `json:"Family,omitempty"`       // e.g. "debian", "rhel"
	Kernel       string `json:"Kernel,omitempty"`       // kernel release, e.g. "6.1.0-25-amd64"
	Architecture string `json:"Architecture,omitempty"` // uname machine, e.g. "x86_64"
}

// Filesystem is one mounted local filesystem.
type Filesystem struct {
	Device     string `json:"Device"`
	MountPoint string `json:"MountPoint"`
	FSType     string `json:"FSType"`
	TotalBytes int64  `json:"TotalBytes"`
	FreeBytes  int64  `json:"FreeBytes"` // available to unprivileged users
}

// NetworkInterface is one network interface other than loopback. Addresses
// are in CIDR prefix notation, e.g. "192.0.2.10/24".
type NetworkInterface struct {
	Name          string   `json:"Name"`
	MACAddress    string   `json:"MACAddress,omitempty"`
	IPv4Addresses []string `json:"IPv4Addresses,omitempty"`
	IPv6Addresses []string `json:"IPv6Addresses,omitempty"`
	MTUSize       int      `json:"MTUSize"` // Redfish EthernetInterface name for the MTU
}

// Package is one installed operating-system package.
type Package struct {
	Name    string `json:"Name"`
	Version string `json:"Version"`
	Manager string `json:"Manager"` // "dpkg", "rpm" or "apk"
}
