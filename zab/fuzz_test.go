package zab

import (
	"testing"

	"zkd/wire"
)

// FuzzFollower feeds a follower or observer any sequence of packets a
// leader could send, right or wrong, and checks the promises its actions
// make to the driver, up to the first error (where the driver leaves the
// leader):
//
//   - a txn is acknowledged only once it is logged and a sync-log after it
//     has made it durable, and the NEWLEADER ACK only after currentEpoch
//     is written;
//   - currentEpoch is written only when everything logged is durable
//     (ZOOKEEPER-4643);
//   - each txn logged of an epoch comes right after the one before it,
//     but the first of a sync (ZOOKEEPER-4925); one that does not come
//     after the last is refused by the log, and the driver leaves;
//   - txns are applied in rising zxid order, an observer acknowledges
//     nothing but NEWLEADER and UPTODATE.
//
// Each packet takes three bytes: its type, then its epoch (1 to 4) and
// counter (0 to 15), from the second byte's two halves, or, for the
// third byte's top bit, the follower's own epoch and its counter.
func FuzzFollower(f *testing.F) {
	// A DIFF sync with proposals and commits, then broadcast; a SNAP; a
	// TRUNC; an observer's INFORMs; a gap.
	f.Add(byte(0), []byte{0, 0x22, 0, 3, 0x23, 0, 4, 0x23, 0, 9, 0x30, 0x80, 10, 0, 0, 3, 0x31, 0x80, 4, 0x31, 0x80})
	f.Add(byte(0), []byte{2, 0x25, 0, 3, 0x26, 0, 4, 0x26, 0, 9, 0x30, 0x80, 4, 0x27, 0, 10, 0, 0})
	f.Add(byte(0), []byte{1, 0x21, 0, 9, 0x30, 0x80, 10, 0, 0, 3, 0x31, 0x80, 3, 0x33, 0x80})
	f.Add(byte(1), []byte{0, 0x22, 0, 5, 0x31, 0x80, 9, 0x30, 0x80, 10, 0, 0, 5, 0x32, 0x80, 5, 0x34, 0x80})
	types := []int32{wire.PacketDiff, wire.PacketTrunc, wire.PacketSnap, wire.PacketProposal, wire.PacketCommit,
		wire.PacketInform, wire.PacketPing, wire.PacketSync, wire.PacketRevalidate, wire.PacketNewLeader, wire.PacketUpToDate}
	f.Fuzz(func(t *testing.T, kind byte, script []byte) {
		const epoch = 3
		last := int64(2)<<32 | 2
		fo := NewFollower(epoch, last)
		observer := kind&1 == 1
		if observer {
			fo = NewObserver(epoch, last)
		}
		var (
			logged, durable, applied int64 // the newest of each; 0 for none
			firstLogOfSync           = true
			epochPersisted           bool
			loggedZxids              = map[int64]bool{}
		)
		for i := 0; i+2 < len(script) && i < 3*200; i += 3 {
			p := wire.QuorumPacket{Type: types[int(script[i])%len(types)], Data: []byte{0}}
			e, c := int64(script[i+1]>>4)%4+1, int64(script[i+1]&0xf)
			if script[i+2]&0x80 != 0 {
				e = epoch
			}
			p.Zxid = e<<32 | c
			if p.Type == wire.PacketUpToDate {
				p.Zxid = -1
			}
			acts, err := fo.Step(&p)
			if err != nil {
				return // the driver leaves this leader
			}
			for _, a := range acts {
				switch a.Kind {
				case ActTruncate, ActLoadSnapshot:
					// The log is cut back (or replaced): what comes
					// next is a new start.
					logged, durable, firstLogOfSync = a.Zxid, a.Zxid, true
					clear(loggedZxids)
				case ActLog:
					if a.Zxid <= logged {
						// The log refuses it (zxids must rise), and the
						// driver leaves the leader: nothing is lost.
						return
					}
					if !firstLogOfSync && a.Zxid>>32 == logged>>32 && a.Zxid != logged+1 {
						t.Fatalf("logged %#x after %#x: the txns between are missing", a.Zxid, logged)
					}
					logged, firstLogOfSync = a.Zxid, false
					loggedZxids[a.Zxid] = true
				case ActSyncLog:
					durable = logged
				case ActTakeSnapshot:
					durable = logged
				case ActPersistCurrentEpoch:
					if durable != logged {
						t.Fatalf("currentEpoch written with %#x logged and only %#x durable", logged, durable)
					}
					epochPersisted = true
				case ActApply:
					if a.Zxid <= applied {
						t.Fatalf("applied %#x after %#x", a.Zxid, applied)
					}
					applied = a.Zxid
				case ActSend:
					if a.Packet.Type != wire.PacketAck {
						continue
					}
					z := a.Packet.Zxid
					if z&0xffffffff == 0 {
						if z != epoch<<32 || !epochPersisted {
							t.Fatalf("ACK %#x (NEWLEADER's or UPTODATE's) with currentEpoch written: %v", z, epochPersisted)
						}
						continue
					}
					if observer {
						t.Fatalf("an observer acknowledged txn %#x", z)
					}
					if !loggedZxids[z] || z > durable {
						t.Fatalf("ACK %#x: logged %v, durable up to %#x", z, loggedZxids[z], durable)
					}
				}
			}
		}
	})
}
