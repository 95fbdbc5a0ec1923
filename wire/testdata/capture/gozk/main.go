// Command gozk drives the go-zookeeper client through every request it can
// send, against the server at -server (the recording proxy).
package main

import (
	"errors"
	"flag"
	"log"
	"time"

	"github.com/go-zookeeper/zk"
)

func main() {
	server := flag.String("server", "127.0.0.1:21811", "server address")
	flag.Parse()
	c, events, err := zk.Connect([]string{*server}, 10*time.Second, zk.WithLogInfo(false))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	waitState(events, zk.StateHasSession)

	must := func(what string, err error) {
		if err != nil {
			log.Fatalf("%s: %v", what, err)
		}
	}
	expect := func(what string, err, want error) {
		if !errors.Is(err, want) {
			log.Fatalf("%s: got %v, want %v", what, err, want)
		}
	}
	acl := zk.WorldACL(zk.PermAll)
	_, err = c.Create("/gozk", []byte("root"), 0, acl)
	must("create", err)
	_, err = c.Create("/gozk/seq-", []byte("s"), zk.FlagSequence|zk.FlagEphemeral, acl)
	must("create seq", err)
	_, err = c.CreateContainer("/gozk/container", nil, zk.FlagTTL, acl)
	expect("createContainer with bad flag", err, zk.ErrInvalidFlags)
	_, err = c.CreateContainer("/gozk/container", []byte{}, zk.FlagContainer, acl)
	must("createContainer", err)
	_, err = c.CreateTTL("/gozk/ttl", []byte("t"), zk.FlagTTL, acl, time.Hour)
	must("createTTL", err)
	_, err = c.Create("/gozk", nil, 0, acl)
	expect("create existing", err, zk.ErrNodeExists)

	_, _, err = c.Get("/gozk")
	must("get", err)
	_, _, err = c.Get("/gozk/missing")
	expect("get missing", err, zk.ErrNoNode)
	_, _, err = c.Exists("/gozk")
	must("exists", err)
	_, _, err = c.Exists("/gozk/missing")
	must("exists missing", err)
	_, _, err = c.Children("/gozk")
	must("children", err)
	st, err := c.Set("/gozk", []byte("v2"), -1)
	must("set", err)
	_, err = c.Set("/gozk", []byte("v3"), st.Version+7)
	expect("set bad version", err, zk.ErrBadVersion)
	_, _, err = c.GetACL("/gozk")
	must("getACL", err)
	_, err = c.SetACL("/gozk", acl, -1)
	must("setACL", err)
	_, err = c.Sync("/gozk")
	must("sync", err)
	must("auth", c.AddAuth("digest", []byte("user:secret")))

	// A data watch and a child watch, fired by the changes below.
	_, _, dataW, err := c.GetW("/gozk")
	must("getW", err)
	_, _, childW, err := c.ChildrenW("/gozk")
	must("childrenW", err)
	_, _, existW, err := c.ExistsW("/gozk/later")
	must("existsW", err)
	_, err = c.Set("/gozk", []byte("v4"), -1)
	must("set fires", err)
	<-dataW
	_, err = c.Create("/gozk/later", nil, 0, acl)
	must("create fires", err)
	<-childW
	<-existW

	// multi that succeeds, then one that fails on its check.
	_, err = c.Multi(
		&zk.CreateRequest{Path: "/gozk/m1", Data: []byte("m"), Acl: acl},
		&zk.SetDataRequest{Path: "/gozk/m1", Data: []byte("m2"), Version: -1},
		&zk.CheckVersionRequest{Path: "/gozk/m1", Version: 1},
		&zk.DeleteRequest{Path: "/gozk/later", Version: -1},
	)
	must("multi", err)
	_, err = c.Multi(
		&zk.CreateRequest{Path: "/gozk/m2", Data: nil, Acl: acl},
		&zk.CheckVersionRequest{Path: "/gozk/m1", Version: 42},
		&zk.DeleteRequest{Path: "/gozk/m1", Version: -1},
	)
	if err == nil {
		log.Fatal("failing multi succeeded")
	}

	// Watches that survive a reconnect: the proxy drops the connection after
	// the reply to the request naming /zkd-golden-drop, the client resumes
	// its session and sends setWatches.
	_, _, _, err = c.GetW("/gozk/m1")
	must("getW before drop", err)
	_, _, err = c.Exists("/zkd-golden-drop")
	must("exists drop marker", err)
	waitState(events, zk.StateDisconnected)
	waitState(events, zk.StateHasSession)
	_, _, err = c.Get("/gozk/m1")
	must("get after reconnect", err)

	// Let a ping go by.
	time.Sleep(4 * time.Second)

	must("delete", c.Delete("/gozk/m1", -1))
	expect("delete not empty", c.Delete("/gozk", -1), zk.ErrNotEmpty)
}

func waitState(events <-chan zk.Event, want zk.State) {
	timeout := time.After(30 * time.Second)
	for {
		select {
		case ev := <-events:
			if ev.State == want {
				return
			}
		case <-timeout:
			log.Fatalf("timed out waiting for state %v", want)
		}
	}
}
