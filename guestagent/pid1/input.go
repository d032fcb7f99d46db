package pid1

import (
	"encoding/binary"
	"fmt"
)

// Linux input event codes pid1 reacts to.
const (
	evKey    = 0x01
	keyPower = 116
)

// inputEventSize is sizeof(struct input_event) on 64-bit kernels: a 16-byte
// timeval, then type, code (u16) and value (s32).
const inputEventSize = 24

// InputEvent is one struct input_event.
type InputEvent struct {
	Type  uint16
	Code  uint16
	Value int32
}

// ParseInputEvents decodes the events in b, which must hold whole events.
func ParseInputEvents(b []byte) ([]InputEvent, error) {
	if len(b)%inputEventSize != 0 {
		return nil, fmt.Errorf("input events: %d bytes is not a multiple of %d", len(b), inputEventSize)
	}
	evs := make([]InputEvent, 0, len(b)/inputEventSize)
	for off := 0; off < len(b); off += inputEventSize {
		e := b[off : off+inputEventSize]
		evs = append(evs, InputEvent{
			Type:  binary.NativeEndian.Uint16(e[16:]),
			Code:  binary.NativeEndian.Uint16(e[18:]),
			Value: int32(binary.NativeEndian.Uint32(e[20:])),
		})
	}
	return evs, nil
}

// IsPowerPress tells whether e is a press of the power key.
func (e InputEvent) IsPowerPress() bool {
	return e.Type == evKey && e.Code == keyPower && e.Value == 1
}
