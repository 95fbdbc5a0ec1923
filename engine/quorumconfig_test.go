package engine

import "testing"

// The ensemble's text, as notifications, NEWLEADER and /zookeeper/config
// carry it, is ZooKeeper's: the first case is what Apache ZooKeeper 3.8
// servers sent each other in wire/testdata/quorum/zk38-ensemble.txt; the
// second follows its rules for IPv6 hosts (in brackets), observers,
// client addresses given in the server line, and ids past the first
// table of Java's HashMap.
func TestQuorumConfigTextIsZooKeepers(t *testing.T) {
	for _, c := range []struct {
		lines map[int64]string
		want  string
	}{
		{map[int64]string{1: "127.0.0.1:22888:23888", 2: "127.0.0.2:22888:23888", 3: "127.0.0.3:22888:23888"},
			"server.1=127.0.0.1:22888:23888:participant\nserver.2=127.0.0.2:22888:23888:participant\nserver.3=127.0.0.3:22888:23888:participant\nversion=0"},
		{map[int64]string{1: "[::1]:2888:3888;2181", 17: "zk17.example:2888:3888:observer;10.0.0.17:2181", 2: "zk2.example:2888:3888:participant"},
			"server.1=[::1]:2888:3888:participant;0.0.0.0:2181\nserver.17=zk17.example:2888:3888:observer;10.0.0.17:2181\nserver.2=zk2.example:2888:3888:participant\nversion=0"},
	} {
		e := &Ensemble{}
		for _, id := range []int64{1, 2, 3, 17} {
			line, ok := c.lines[id]
			if !ok {
				continue
			}
			m, err := parseMember(id, line)
			if err != nil {
				t.Fatalf("server.%d=%s: %v", id, line, err)
			}
			e.Members = append(e.Members, m)
		}
		if got := quorumConfigText(e); got != c.want {
			t.Errorf("got\n%s\nwant\n%s", got, c.want)
		}
	}
}
