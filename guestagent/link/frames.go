package link

import "encoding/binary"

// yamux frame header: version, type, flags, stream ID, length.
const (
	yamuxHeaderSize = 12
	yamuxTypeData   = 0
	yamuxTypeWindow = 1
	yamuxTypePing   = 2
	yamuxFlagSYN    = 1
)

// frameScanner follows the yamux frames a host sends over the serial port
// to notice a new host. A host that connects again right after leaving may
// do so before the guest reads the 0 that marks the gap, so the bytes of the
// new host's session can follow the old one's without a break; the new
// session shows itself by its first ping (a yamux session numbers its pings
// from 0) or by opening stream 1 again. Found at the ping, the old session
// ends before the new host opens a stream, so none of the old session's
// last frames (a late FIN of its stream 1) can reach the new one.
type frameScanner struct {
	hdr     [yamuxHeaderSize]byte
	nhdr    int    // header bytes held back until the header is whole
	payload uint32 // bytes of the current data frame still to come
	opened1 bool   // stream 1 was opened in this session
	pinged0 bool   // ping 0 was sent in this session
}

// Feed takes bytes read from the port. It returns the bytes for the current
// session; when a new host's session starts within b, it also returns the
// bytes that begin it, and newHost. A partial frame header is held back
// until the rest arrives.
func (s *frameScanner) Feed(b []byte) (deliver, next []byte, newHost bool) {
	out := make([]byte, 0, len(b)+yamuxHeaderSize)
	for i := 0; i < len(b); {
		if s.payload > 0 {
			n := min(int(min(s.payload, uint32(len(b)-i))), len(b)-i)
			out = append(out, b[i:i+n]...)
			s.payload -= uint32(n)
			i += n
			continue
		}
		n := copy(s.hdr[s.nhdr:], b[i:])
		s.nhdr += n
		i += n
		if s.nhdr < yamuxHeaderSize {
			break
		}
		s.nhdr = 0
		typ := s.hdr[1]
		flags := binary.BigEndian.Uint16(s.hdr[2:])
		id := binary.BigEndian.Uint32(s.hdr[4:])
		newSession := false
		switch {
		case flags&yamuxFlagSYN != 0 && id == 1 && (typ == yamuxTypeData || typ == yamuxTypeWindow):
			newSession, s.opened1 = s.opened1, true
		case flags&yamuxFlagSYN != 0 && typ == yamuxTypePing && binary.BigEndian.Uint32(s.hdr[8:]) == 0:
			newSession, s.pinged0 = s.pinged0, true
		}
		if newSession {
			next = append(append([]byte(nil), s.hdr[:]...), b[i:]...)
			return out, next, true
		}
		out = append(out, s.hdr[:]...)
		if typ == yamuxTypeData {
			s.payload = binary.BigEndian.Uint32(s.hdr[8:])
		}
	}
	return out, nil, false
}
