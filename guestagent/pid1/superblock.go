package pid1

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ext4 superblock layout: the superblock starts at byte 1024 of the device.
const (
	superblockOffset = 1024
	superblockSize   = 1024
	ext4Magic        = 0xEF53
	magicOffset      = 56 // within the superblock: byte 1080 of the device
	incompat64bit    = 0x80
)

// ErrNoFilesystem is returned when the device carries no ext2/3/4 magic.
var ErrNoFilesystem = errors.New("no ext4 filesystem")

// Superblock is what pid1 needs of an ext4 superblock.
type Superblock struct {
	BlockCount uint64
	BlockSize  uint64
	Clean      bool
}

// Bytes is the size of the filesystem.
func (s Superblock) Bytes() uint64 { return s.BlockCount * s.BlockSize }

// ParseSuperblock parses the 1024 bytes of an ext4 superblock.
func ParseSuperblock(b []byte) (Superblock, error) {
	if len(b) < superblockSize {
		return Superblock{}, fmt.Errorf("superblock: short read of %d bytes", len(b))
	}
	if binary.LittleEndian.Uint16(b[magicOffset:]) != ext4Magic {
		return Superblock{}, ErrNoFilesystem
	}
	logBlock := binary.LittleEndian.Uint32(b[24:])
	if logBlock > 6 { // block sizes 1 KiB .. 64 KiB
		return Superblock{}, fmt.Errorf("superblock: block size 2^%d KiB out of range", logBlock)
	}
	count := uint64(binary.LittleEndian.Uint32(b[4:]))
	if binary.LittleEndian.Uint32(b[0x60:])&incompat64bit != 0 {
		count |= uint64(binary.LittleEndian.Uint32(b[0x150:])) << 32
	}
	return Superblock{
		BlockCount: count,
		BlockSize:  1024 << logBlock,
		Clean:      binary.LittleEndian.Uint16(b[58:])&1 != 0,
	}, nil
}
