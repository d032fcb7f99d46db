//go:build linux

package image

// LayersSize is the size of every layer in the store, each counted once
// (docker system df).
func (s *Store) LayersSize() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.totalLayerSize()
}
