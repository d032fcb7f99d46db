// Package snapshot owns the overlay snapshotter: committed read-only layers
// addressed by chain ID, writable container layers, and the mounts (data, not
// effects) that assemble them into a rootfs. It also owns layer extraction
// (Apply): tar streams, plain, gzip or zstd, with whiteouts turned into
// overlayfs form and every path resolved inside the target through os.Root.
//
// Importing an image's layers, base first:
//
//	parent := digest.Digest("")
//	for _, diffID := range diffIDs {
//		chainID := chain(parent, diffID)
//		if !sn.HasLayer(chainID) {
//			sn.ApplyLayer(chainID, parent, uncompressed, opts, checkDiffID)
//		}
//		parent = chainID
//	}
//	mounts, err := sn.Prepare(containerID, parent) // one "overlay" mount
//
// A layer is built under tmp/ and renamed into place only when complete and
// verified, so a crash never leaves a half-applied layer visible.
package snapshot
