// Package cgroups owns the cgroup v2 hierarchy of the engine: one cgroup per
// container, limits (memory, cpu, cpu shares, pids), the freezer for pause,
// process lists, and the report of which limits this host can enforce.
package cgroups
