package pid1

import (
	"encoding/binary"
	"fmt"
)

// SwapHeader is the first page of a swap area of size bytes, as mkswap
// writes it: version 1, the last page's number, no bad pages, and the
// SWAPSPACE2 signature at the end of the page.
func SwapHeader(size int64, pageSize int) ([]byte, error) {
	if pageSize < 4096 || pageSize&(pageSize-1) != 0 {
		return nil, fmt.Errorf("swap header: page size %d", pageSize)
	}
	pages := size / int64(pageSize)
	if pages < 10 || pages-1 > 1<<32-1 {
		return nil, fmt.Errorf("swap header: %d bytes is not a usable swap size", size)
	}
	b := make([]byte, pageSize)
	binary.LittleEndian.PutUint32(b[1024:], 1)               // version
	binary.LittleEndian.PutUint32(b[1028:], uint32(pages-1)) // last_page
	binary.LittleEndian.PutUint32(b[1032:], 0)               // nr_badpages
	copy(b[1052:1068], "berth-swap")                         // volume name
	copy(b[pageSize-10:], "SWAPSPACE2")
	return b, nil
}
