package inventory

import (
	"context"
	"math"
	"strings"

	"github.com/shirou/gopsutil/v4/disk"
)

// collectFilesystems lists local filesystems with their sizes. Where a
// mount point is mounted over, the last (visible) mount is kept.
func collectFilesystems(ctx context.Context) []Filesystem {
	parts, err := disk.PartitionsWithContext(ctx, true)
	if err != nil {
		return nil
	}
	var fss []Filesystem
	seen := make(map[string]int) // mount point -> index in fss
	for _, p := range parts {
		if ctx.Err() != nil {
			return nil
		}
		if skipFilesystem(p.Fstype, p.Mountpoint) {
			continue
		}
		fs := Filesystem{Device: p.Device, MountPoint: p.Mountpoint, FSType: p.Fstype}
		if u, err := disk.UsageWithContext(ctx, p.Mountpoint); err == nil {
			fs.TotalBytes, fs.FreeBytes = toInt64(u.Total), toInt64(u.Free)
		}
		if i, ok := seen[fs.MountPoint]; ok {
			fss[i] = fs
			continue
		}
		seen[fs.MountPoint] = len(fss)
		fss = append(fss, fs)
	}
	return fss
}

func toInt64(u uint64) int64 {
	return int64(min(u, math.MaxInt64))
}

// skipFilesystem tells the mounts that are not the host's storage: kernel
// and memory filesystems, read-only images, network filesystems (statfs on
// a dead server blocks), and the per-container mounts of container
// runtimes, which come and go with containers. overlay is kept: it is the
// root filesystem of a container.
func skipFilesystem(fstype, mountpoint string) bool {
	switch fstype {
	case "autofs", "binfmt_misc", "bpf", "cgroup", "cgroup2", "configfs",
		"debugfs", "devfs", "devpts", "devtmpfs", "efivarfs", "fusectl",
		"hugetlbfs", "mqueue", "nfsd", "nsfs", "proc", "pstore", "ramfs",
		"rpc_pipefs", "securityfs", "selinuxfs", "sysfs", "tmpfs", "tracefs",
		"squashfs", "fuse.lxcfs", "fuse.gvfsd-fuse", "fuse.portal":
		return true
	case "9p", "afs", "ceph", "cifs", "fuse.glusterfs", "fuse.rclone",
		"fuse.s3fs", "fuse.sshfs", "glusterfs", "lustre", "nfs", "nfs4",
		"smb3", "smbfs":
		return true
	}
	for _, dir := range [...]string{
		"/proc/", "/sys/", "/dev/", "/run/containerd/", "/run/docker/",
		"/var/lib/containerd/", "/var/lib/containers/", "/var/lib/docker/",
		"/var/lib/kubelet/pods/",
	} {
		if strings.HasPrefix(mountpoint, dir) {
			return true
		}
	}
	return false
}
