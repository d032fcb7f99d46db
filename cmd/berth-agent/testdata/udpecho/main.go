// Command udpecho answers every datagram on the UDP port given as its
// argument with "echo:" and the datagram; the UDP published-port test
// runs it in a container (busybox has no UDP server).
package main

import (
	"log"
	"net"
	"os"
)

func main() {
	pc, err := net.ListenPacket("udp4", ":"+os.Args[1])
	if err != nil {
		log.Fatal(err)
	}
	buf := make([]byte, 65536)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			log.Fatal(err)
		}
		if _, err := pc.WriteTo(append([]byte("echo:"), buf[:n]...), from); err != nil {
			log.Print(err)
		}
	}
}
