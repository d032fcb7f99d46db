package vz

import (
	"context"
	"errors"
	"fmt"
	"net"
	"reflect"
	"unsafe"
)

// dialPort opens a connection to a guest port through connect (the
// virtio-socket device's Connect, which takes no context), giving up when
// ctx ends; a connection that comes after that is closed. The connection
// returned supports CloseWrite (halfCloseable).
func dialPort(ctx context.Context, connect func(uint32) (net.Conn, error), port uint32) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		c, err := connect(port)
		ch <- result{c, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, fmt.Errorf("connect to guest port %d: %w", port, r.err)
		}
		if r.c == nil {
			return nil, fmt.Errorf("connect to guest port %d: no connection", port)
		}
		return halfCloseable(r.c), nil
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.c != nil {
				r.c.Close()
			}
		}()
		return nil, fmt.Errorf("connect to guest port %d: %w", port, ctx.Err())
	}
}

// closeWriter is a connection that can half-close.
type closeWriter interface {
	CloseWrite() error
}

// connType is the type of a net.Conn field.
var connType = reflect.TypeFor[net.Conn]()

// halfCloseable returns c, or the connection inside it, such that the
// result has CloseWrite, which the channel's half-close needs.
//
// vz's VirtioSocketConnection (v3.7.1) is a net.Conn over the socket the
// framework hands out (a unix stream socket, whose shutdown(SHUT_WR) the
// framework carries to the guest as a vsock send shutdown), kept in its
// unexported field rawConn, and does not pass CloseWrite on. That socket
// is all the wrapper holds besides the two port numbers, and closing it is
// all its Close does, so the socket itself is returned. When c has no such
// field, it is returned with a CloseWrite that fails.
func halfCloseable(c net.Conn) net.Conn {
	if _, ok := c.(closeWriter); ok {
		return c
	}
	if inner := rawConn(c); inner != nil {
		if _, ok := inner.(closeWriter); ok {
			return inner
		}
	}
	return noHalfClose{c}
}

// rawConn reads the net.Conn in c's field named rawConn, or nil.
func rawConn(c net.Conn) net.Conn {
	v := reflect.ValueOf(c)
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return nil
	}
	f := v.Elem().FieldByName("rawConn")
	if !f.IsValid() || f.Type() != connType {
		return nil
	}
	// An unexported field cannot be read through reflect's Interface;
	// it is read through its address, as its own type.
	inner, _ := reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem().Interface().(net.Conn)
	return inner
}

// errNoHalfClose: the connection cannot close only its write half.
var errNoHalfClose = errors.New("vz: this virtio-socket connection cannot half-close")

// noHalfClose is a connection whose CloseWrite fails.
type noHalfClose struct{ net.Conn }

func (noHalfClose) CloseWrite() error { return errNoHalfClose }
