package hostlink_test

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/berthdesktop/berth/app/hostlink"
	"github.com/berthdesktop/berth/app/hostlink/linktest"
)

func benchSerial(b *testing.B) hostlink.Dialer {
	path := filepath.Join(b.TempDir(), "link.sock")
	linktest.StartSerialGuest(b, path, linktest.Services())
	d := hostlink.NewSerial(path, nil)
	b.Cleanup(func() { d.Close() })
	return d
}

// BenchmarkSerialRoundTrip: one byte to the echo port and back on an open
// stream of the fallback transport.
func BenchmarkSerialRoundTrip(b *testing.B) {
	d := benchSerial(b)
	c, err := d.Dial(context.Background(), linktest.PortEcho)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 1)
	for b.Loop() {
		if _, err := c.Write(buf); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSerialDial: opening a stream and a first round trip.
func BenchmarkSerialDial(b *testing.B) {
	d := benchSerial(b)
	buf := make([]byte, 1)
	for b.Loop() {
		c, err := d.Dial(context.Background(), linktest.PortEcho)
		if err != nil {
			b.Fatal(err)
		}
		c.Write(buf)
		if _, err := io.ReadFull(c, buf); err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}

// BenchmarkSerialThroughput: bulk transfer host to guest ("in") and guest
// to host ("out"), bytes per op = the chunk size.
func BenchmarkSerialThroughput(b *testing.B) {
	const total = 32 << 20
	for _, dir := range []string{"in", "out"} {
		b.Run(dir, func(b *testing.B) {
			d := benchSerial(b)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			b.SetBytes(total)
			for b.Loop() {
				var err error
				if dir == "in" {
					err = pushBytes(ctx, d, total)
				} else {
					err = pullBytes(ctx, d, total)
				}
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func pushBytes(ctx context.Context, d hostlink.Dialer, n int64) error {
	c, err := d.Dial(ctx, linktest.PortSink)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := io.Copy(c, io.LimitReader(linktest.Pattern{}, n)); err != nil {
		return err
	}
	c.(hostlink.HalfCloser).CloseWrite()
	_, err = io.ReadAll(c)
	return err
}

func pullBytes(ctx context.Context, d hostlink.Dialer, n int64) error {
	c, err := d.Dial(ctx, linktest.PortSource)
	if err != nil {
		return err
	}
	defer c.Close()
	fmt.Fprintf(c, "%d\n", n)
	got, err := io.Copy(io.Discard, c)
	if err == nil && got != n {
		err = fmt.Errorf("got %d bytes, want %d", got, n)
	}
	return err
}
