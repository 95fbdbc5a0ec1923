// Command proxy sits between ZooKeeper clients and a ZooKeeper server and
// records every frame in both directions, one hex line per frame:
//
//	<conn> > <hex>   client to server
//	<conn> < <hex>   server to client
//
// Each hex string is a whole frame, its 4-byte length prefix included.
// A client that sends a request naming the path in -drop loses its
// connection right after the reply to that request, which makes it reconnect
// and replay its watches (setWatches / setWatches2).
package main

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"sync"
	"sync/atomic"
)

var (
	listen = flag.String("listen", "127.0.0.1:21811", "address clients connect to")
	target = flag.String("target", "127.0.0.1:21810", "ZooKeeper server")
	out    = flag.String("out", "", "file that receives the recorded frames")
	drop   = flag.String("drop", "/zkd-golden-drop", "a request naming this path ends its connection after the reply")
)

type recorder struct {
	mu sync.Mutex
	w  io.Writer
}

func (r *recorder) frame(conn int64, dir string, f []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprintf(r.w, "%d %s %s\n", conn, dir, hex.EncodeToString(f))
}

// readFrame reads one length-prefixed frame.
func readFrame(r io.Reader) ([]byte, error) {
	var h [4]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(h[:])
	if n > 64<<20 {
		return nil, fmt.Errorf("frame of %d bytes", n)
	}
	f := make([]byte, 4+n)
	copy(f, h[:])
	_, err := io.ReadFull(r, f[4:])
	return f, err
}

func main() {
	flag.Parse()
	f, err := os.Create(*out)
	if err != nil {
		log.Fatal(err)
	}
	rec := &recorder{w: f}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("proxy %s -> %s recording to %s", *listen, *target, *out)
	var next atomic.Int64
	for {
		c, err := ln.Accept()
		if err != nil {
			log.Fatal(err)
		}
		go serve(next.Add(1), c, rec)
	}
}

func serve(id int64, client net.Conn, rec *recorder) {
	server, err := net.Dial("tcp", *target)
	if err != nil {
		log.Print(err)
		client.Close()
		return
	}
	var dropArmed atomic.Bool
	closeBoth := func() { client.Close(); server.Close() }
	go func() {
		defer closeBoth()
		for {
			f, err := readFrame(client)
			if err != nil {
				return
			}
			rec.frame(id, ">", f)
			if bytes.Contains(f, []byte(*drop)) {
				dropArmed.Store(true)
			}
			if _, err := server.Write(f); err != nil {
				return
			}
		}
	}()
	defer closeBoth()
	for {
		f, err := readFrame(server)
		if err != nil {
			return
		}
		rec.frame(id, "<", f)
		if _, err := client.Write(f); err != nil {
			return
		}
		// A reply (not a notification, xid -1) after the marker: cut.
		if dropArmed.Load() && len(f) >= 8 && int32(binary.BigEndian.Uint32(f[4:])) != -1 {
			log.Printf("conn %d: dropping on request", id)
			return
		}
	}
}
