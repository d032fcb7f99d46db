package pid1

import (
	"strconv"
	"strings"
)

// MemoryInUse computes, from the text of /proc/meminfo, the memory in use
// that the kernel cannot reclaim: MemTotal - MemFree - Buffers -
// (Cached - Shmem) - SReclaimable, in bytes. Missing fields count as 0.
func MemoryInUse(meminfo string) uint64 {
	f := map[string]uint64{}
	for _, line := range strings.Split(meminfo, "\n") {
		parts := strings.Fields(line)
		if len(parts) < 2 {
			continue
		}
		v, err := strconv.ParseUint(parts[1], 10, 64)
		if err != nil || v > 1<<50 {
			continue
		}
		f[strings.TrimSuffix(parts[0], ":")] = v << 10
	}
	used := f["MemTotal"]
	cached := f["Cached"]
	if shmem := f["Shmem"]; shmem <= cached {
		cached -= shmem
	}
	for _, sub := range []uint64{f["MemFree"], f["Buffers"], cached, f["SReclaimable"]} {
		if sub > used {
			return 0
		}
		used -= sub
	}
	return used
}
