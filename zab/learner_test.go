package zab

import (
	"strings"
	"testing"

	"zkd/wire"
)

func pkt(typ int32, zxid int64) *wire.QuorumPacket {
	return &wire.QuorumPacket{Type: typ, Zxid: zxid, Data: []byte{byte(zxid)}}
}

// run steps a follower through packets and returns its actions, one line
// per packet ("-" for none).
func run(t *testing.T, f *Follower, packets ...*wire.QuorumPacket) string {
	t.Helper()
	var lines []string
	for _, p := range packets {
		acts, err := f.Step(p)
		if err != nil {
			lines = append(lines, "error: "+err.Error())
			break
		}
		var parts []string
		for _, a := range acts {
			parts = append(parts, a.String())
		}
		if len(parts) == 0 {
			parts = []string{"-"}
		}
		lines = append(lines, wire.PacketName(p.Type)+": "+strings.Join(parts, ", "))
	}
	return strings.Join(lines, "\n")
}

func TestFollowerSync(t *testing.T) {
	const e = 5 // the new epoch
	nl := int64(e << 32)
	for _, c := range []struct {
		name    string
		last    int64
		packets []*wire.QuorumPacket
		want    string
	}{
		{"DIFF: proposals are logged and durable before the NEWLEADER ACK, acknowledged and applied at UPTODATE",
			4<<32 | 7,
			[]*wire.QuorumPacket{pkt(wire.PacketDiff, 4<<32|9), pkt(wire.PacketProposal, 4<<32|8), pkt(wire.PacketCommit, 4<<32|8),
				pkt(wire.PacketProposal, 4<<32|9), pkt(wire.PacketCommit, 4<<32|9), pkt(wire.PacketPing, 4<<32|9),
				pkt(wire.PacketNewLeader, nl), pkt(wire.PacketProposal, nl|1), pkt(wire.PacketCommit, nl|1), pkt(wire.PacketUpToDate, -1)},
			`DIFF: -
PROPOSAL: -
COMMIT: -
PROPOSAL: -
COMMIT: -
PING: -
NEWLEADER: log 0x400000008, log 0x400000009, sync-log, persist-current-epoch 5, send ACK 0x500000000
PROPOSAL: -
COMMIT: -
UPTODATE: send ACK 0x500000000, serve, send ACK 0x400000008, send ACK 0x400000009, log 0x500000001, sync-log, send ACK 0x500000001, apply 0x400000008, apply 0x400000009, apply 0x500000001`},
		{"SNAP: the tree loads in memory, commits apply at once, a snapshot makes them durable at NEWLEADER",
			0,
			[]*wire.QuorumPacket{pkt(wire.PacketSnap, 4<<32|9), pkt(wire.PacketProposal, 4<<32|10), pkt(wire.PacketCommit, 4<<32|10),
				pkt(wire.PacketProposal, 4<<32|11), pkt(wire.PacketNewLeader, nl), pkt(wire.PacketCommit, 4<<32|11), pkt(wire.PacketUpToDate, -1)},
			`SNAP: load-snapshot 0x400000009
PROPOSAL: -
COMMIT: apply 0x40000000a
PROPOSAL: -
NEWLEADER: take-snapshot, log 0x40000000b, sync-log, persist-current-epoch 5, send ACK 0x500000000
COMMIT: -
UPTODATE: send ACK 0x500000000, serve, send ACK 0x40000000b, apply 0x40000000b`},
		{"TRUNC: the log is cut back first",
			4<<32 | 12,
			[]*wire.QuorumPacket{pkt(wire.PacketTrunc, 4<<32|10), pkt(wire.PacketNewLeader, nl), pkt(wire.PacketUpToDate, -1)},
			`TRUNC: truncate 0x40000000a
NEWLEADER: take-snapshot, persist-current-epoch 5, send ACK 0x500000000
UPTODATE: send ACK 0x500000000, serve`},
		{"serving: log, durable, then ACK; commits in order; pings and syncs answered",
			4<<32 | 7,
			[]*wire.QuorumPacket{pkt(wire.PacketDiff, 4<<32|7), pkt(wire.PacketNewLeader, nl), pkt(wire.PacketUpToDate, -1),
				pkt(wire.PacketProposal, nl|1), pkt(wire.PacketProposal, nl|2), pkt(wire.PacketPing, nl|2), pkt(wire.PacketCommit, nl|1),
				pkt(wire.PacketSync, 0), pkt(wire.PacketCommit, nl|2)},
			`DIFF: -
NEWLEADER: persist-current-epoch 5, send ACK 0x500000000
UPTODATE: send ACK 0x500000000, serve
PROPOSAL: log 0x500000001, sync-log, send ACK 0x500000001
PROPOSAL: log 0x500000002, sync-log, send ACK 0x500000002
PING: pong
COMMIT: apply 0x500000001
SYNC: answer-sync
COMMIT: apply 0x500000002`},
		{"a COMMIT out of order is refused",
			4<<32 | 7,
			[]*wire.QuorumPacket{pkt(wire.PacketDiff, 4<<32|7), pkt(wire.PacketNewLeader, nl), pkt(wire.PacketUpToDate, -1),
				pkt(wire.PacketProposal, nl|1), pkt(wire.PacketProposal, nl|2), pkt(wire.PacketCommit, nl|2)},
			`DIFF: -
NEWLEADER: persist-current-epoch 5, send ACK 0x500000000
UPTODATE: send ACK 0x500000000, serve
PROPOSAL: log 0x500000001, sync-log, send ACK 0x500000001
PROPOSAL: log 0x500000002, sync-log, send ACK 0x500000002
error: zab: COMMIT 0x500000002 does not match the oldest logged txn`},
		{"a NEWLEADER of another epoch, or a sync opened with something else, is refused",
			0,
			[]*wire.QuorumPacket{pkt(wire.PacketDiff, 0), pkt(wire.PacketNewLeader, 6<<32)},
			`DIFF: -
error: zab: NEWLEADER 0x600000000 in epoch 5`},
		{"UPTODATE before NEWLEADER is refused",
			0,
			[]*wire.QuorumPacket{pkt(wire.PacketSnap, 0), pkt(wire.PacketUpToDate, -1)},
			`SNAP: load-snapshot 0x0
error: zab: UPTODATE before NEWLEADER`},
		{"an old PROPOSAL while serving is refused",
			4<<32 | 7,
			[]*wire.QuorumPacket{pkt(wire.PacketDiff, 4<<32|7), pkt(wire.PacketNewLeader, nl), pkt(wire.PacketUpToDate, -1), pkt(wire.PacketProposal, 4<<32|7)},
			`DIFF: -
NEWLEADER: persist-current-epoch 5, send ACK 0x500000000
UPTODATE: send ACK 0x500000000, serve
error: zab: PROPOSAL 0x400000007 after 0x400000007`},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := run(t, NewFollower(e, c.last), c.packets...); got != c.want {
				t.Fatalf("got\n%s\nwant\n%s", got, c.want)
			}
		})
	}
	if _, err := NewFollower(e, 0).Step(pkt(wire.PacketProposal, 1)); err == nil {
		t.Fatal("a sync opened with a PROPOSAL was taken")
	}
}

// An observer syncs as a follower does, then logs and applies each INFORM
// without acknowledging it, in zxid order.
func TestObserverTakesInforms(t *testing.T) {
	const e = 3
	nl := int64(e << 32)
	got := run(t, NewObserver(e, 0x100000002),
		pkt(wire.PacketDiff, 0x100000002),
		pkt(wire.PacketNewLeader, nl),
		pkt(wire.PacketUpToDate, -1),
		pkt(wire.PacketInform, nl|1),
		pkt(wire.PacketProposal, nl|2),
		pkt(wire.PacketInform, nl|2),
		pkt(wire.PacketPing, nl|2),
		pkt(wire.PacketInform, nl|1),
	)
	want := `DIFF: -
NEWLEADER: persist-current-epoch 3, send ACK 0x300000000
UPTODATE: send ACK 0x300000000, serve
INFORM: log 0x300000001, apply 0x300000001
PROPOSAL: -
INFORM: log 0x300000002, apply 0x300000002
PING: pong
error: zab: INFORM 0x300000001 after 0x300000002`
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}

// A txn committed while an observer syncs reaches it as an INFORM between
// the sync's opening and UPTODATE: it is the txn's proposal and commit at
// once. Before NEWLEADER after a SNAP it applies at once (and is logged
// with the snapshot); after NEWLEADER it is logged and applied at
// UPTODATE, unacknowledged. A follower is never sent one.
func TestObserverTakesInformsDuringSync(t *testing.T) {
	const e = 3
	nl := int64(e << 32)
	got := run(t, NewObserver(e, 0),
		pkt(wire.PacketSnap, 0x200000004),
		pkt(wire.PacketProposal, 0x200000005),
		pkt(wire.PacketCommit, 0x200000005),
		pkt(wire.PacketInform, nl|1),
		pkt(wire.PacketNewLeader, nl),
		pkt(wire.PacketInform, nl|2),
		pkt(wire.PacketUpToDate, -1),
		pkt(wire.PacketInform, nl|3),
	)
	want := `SNAP: load-snapshot 0x200000004
PROPOSAL: -
COMMIT: apply 0x200000005
INFORM: apply 0x300000001
NEWLEADER: take-snapshot, persist-current-epoch 3, send ACK 0x300000000
INFORM: -
UPTODATE: send ACK 0x300000000, serve, log 0x300000002, apply 0x300000002
INFORM: log 0x300000003, apply 0x300000003`
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	got = run(t, NewObserver(e, 0x200000004),
		pkt(wire.PacketDiff, 0x200000004),
		pkt(wire.PacketInform, nl|1),
		pkt(wire.PacketNewLeader, nl),
		pkt(wire.PacketUpToDate, -1),
	)
	want = `DIFF: -
INFORM: -
NEWLEADER: log 0x300000001, sync-log, persist-current-epoch 3, send ACK 0x300000000
UPTODATE: send ACK 0x300000000, serve, send ACK 0x300000001, apply 0x300000001`
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	f := NewFollower(e, 0)
	if _, err := f.Step(pkt(wire.PacketDiff, 0)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Step(pkt(wire.PacketInform, nl|1)); err == nil {
		t.Fatal("a follower took an INFORM")
	}
}
