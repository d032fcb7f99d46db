// Package volume owns the engine's local volume driver: named and
// anonymous volumes under DATA-ROOT/volumes/NAME/_data, their labels and
// driver options (type, device, o: a volume with a type or device is a
// mount(2) of that device onto _data while containers use it), the
// references containers hold on them (a referenced volume cannot be
// removed or pruned), their sizes, and docker volume create, ls (with
// filters), inspect, rm and prune. Metadata persists across engine
// restarts; references are rebuilt by the engine from its containers.
package volume
