package wal_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"os"
	"strings"
	"testing"

	"zkd/wal"
	"zkd/wire"
	"zkd/ztree"
)

// snapFromZooKeeper is the tree a ZooKeeper 3.8 leader streamed after its
// SNAP packet in the recorded ensemble (wire/testdata/quorum), with the
// SNAP packet's zxid.
func snapFromZooKeeper(t *testing.T) (body []byte, zxid int64) {
	t.Helper()
	raw, err := os.ReadFile("../wire/testdata/quorum/zk38-ensemble.txt")
	if err != nil {
		t.Fatal(err)
	}
	var lastSnapZxid int64
	for _, l := range strings.Split(string(raw), "\n") {
		f := strings.Fields(l)
		if len(f) != 4 || strings.HasPrefix(l, "#") {
			continue
		}
		b, err := hex.DecodeString(f[3])
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case f[2] == "packet" && binary.BigEndian.Uint32(b) == 15:
			lastSnapZxid = int64(binary.BigEndian.Uint64(b[4:]))
		case f[2] == "snap":
			return b, lastSnapZxid
		}
	}
	t.Fatal("no snapshot in the recorded ensemble (make golden-quorum)")
	return nil, 0
}

// A ZooKeeper leader's SNAP stream loads into its tree, and the tree
// written back the same way loads the same.
func TestSnapBodyFromZooKeeper(t *testing.T) {
	body, zxid := snapFromZooKeeper(t)
	// What follows the signature on the socket stays unread.
	r := bufio.NewReader(bytes.NewReader(append(append([]byte(nil), body...), "next packet"...)))
	tree, err := wal.ReadSnapBody(r, zxid, ztree.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rest, _ := r.ReadString(0); rest != "next packet" {
		t.Fatalf("after the snapshot the stream holds %q", rest)
	}
	v := tree.Published()
	// quorum.sh: server 3 joined the first two with an empty log and got
	// the new ensemble's tree: /zookeeper, its quota node, and the config
	// node, readable by anyone and by nobody writable.
	n, ok := v.Get("/zookeeper/config")
	if !ok || !strings.Contains(n.Data, "server.3=127.0.0.3:22888:23888:participant") || v.Zxid() != zxid {
		t.Fatalf("/zookeeper/config: %q (%v) at %#x", n.Data, ok, v.Zxid())
	}
	acl, _, err := v.ACL("/zookeeper/config", nil)
	if err != nil || len(acl) != 1 || acl[0].Perms != wire.PermRead || acl[0].ID != (wire.Id{Scheme: "world", ID: "anyone"}) {
		t.Fatalf("/zookeeper/config's ACL: %+v (%v)", acl, err)
	}
	if _, ok := v.Get("/zookeeper/quota"); !ok || v.NodeCount() != 4 {
		t.Fatalf("%d znodes; want /, /zookeeper, its config and quota", v.NodeCount())
	}

	var out bytes.Buffer
	if err := wal.WriteSnapBody(&out, v); err != nil {
		t.Fatal(err)
	}
	if out.Len() != len(body) {
		t.Fatalf("written back, %d bytes against ZooKeeper's %d", out.Len(), len(body))
	}
	again, err := wal.ReadSnapBody(&out, zxid, ztree.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if again.Published().Digest() != v.Digest() || again.Published().NodeCount() != v.NodeCount() {
		t.Fatal("the tree written back does not load as the same tree")
	}

	// Cut short or without its signature, it is refused.
	for _, bad := range [][]byte{body[:len(body)/2], body[:len(body)-4], append(body[:len(body)-10:len(body)-10], "NotHere!!!"...)} {
		if _, err := wal.ReadSnapBody(bytes.NewReader(bad), zxid, ztree.Options{}); err == nil {
			t.Errorf("a snapshot of %d bytes (%q at the end) was taken", len(bad), bad[len(bad)-10:])
		}
	}
}

// Every PROPOSAL a ZooKeeper 3.8 leader sent in the recorded ensemble
// carries a txn entry as the log holds it: it decodes (header, record,
// digest), names the proposal's zxid, and encodes back to the same bytes
// as a zkd leader encodes its proposals (EncodeTxn).
func TestProposalsFromZooKeeperAreTxnEntries(t *testing.T) {
	raw, err := os.ReadFile("../wire/testdata/quorum/zk38-ensemble.txt")
	if err != nil {
		t.Fatal(err)
	}
	types := map[wire.OpCode]int{}
	for _, l := range strings.Split(string(raw), "\n") {
		f := strings.Fields(l)
		if len(f) != 4 || f[2] != "packet" || strings.HasPrefix(l, "#") {
			continue
		}
		b, _ := hex.DecodeString(f[3])
		var p wire.QuorumPacket
		if n, err := wire.ReadQuorumPacket(&p, b, wire.Copy, 1<<20); err != nil || n != len(b) {
			t.Fatalf("%s: %v", l[:20], err)
		}
		if p.Type != wire.PacketProposal {
			continue
		}
		txn, err := wal.DecodeTxn(p.Data)
		if err != nil {
			t.Fatalf("PROPOSAL %#x: %v", p.Zxid, err)
		}
		if txn.Header.Zxid != p.Zxid || txn.Digest == nil {
			t.Fatalf("PROPOSAL %#x holds txn %#x (digest %v)", p.Zxid, txn.Header.Zxid, txn.Digest)
		}
		if got := wal.EncodeTxn(&txn); !bytes.Equal(got, p.Data) {
			t.Fatalf("PROPOSAL %#x re-encodes to %x, not %x", p.Zxid, got, p.Data)
		}
		types[txn.Header.Type]++
	}
	for _, op := range []wire.OpCode{wire.OpCreateSession, wire.OpCloseSession, wire.OpCreate, wire.OpSetData, wire.OpDelete} {
		if types[op] == 0 {
			t.Errorf("no %v txn among the proposals (%v)", op, types)
		}
	}
}

// A closeSession txn comes in four forms: with or without the list of the
// session's ephemerals (ZooKeeper 3.8's closeSessionTxn.enabled, and
// versions before 3.7 never list them), each with or without a digest.
// Each decodes to what was encoded, including a list whose bytes are as
// long as a digest.
func TestCloseSessionTxnForms(t *testing.T) {
	hdr := wire.TxnHeader{ClientID: 0x100, Cxid: 3, Zxid: 0x100000007, Time: 1700000000000, Type: wire.OpCloseSession}
	digest := &wire.TxnDigest{Version: ztree.DigestVersion, TreeDigest: 0x1234567890}
	for _, c := range []struct {
		name   string
		record *wire.CloseSessionTxn
		digest *wire.TxnDigest
	}{
		{"no list, a digest", nil, digest},
		{"no list, no digest", nil, nil},
		{"a list, a digest", &wire.CloseSessionTxn{Paths2Delete: []string{"/a", "/b/c"}}, digest},
		{"a list, no digest", &wire.CloseSessionTxn{Paths2Delete: []string{"/a", "/b/c"}}, nil},
		{"a list as long as a digest", &wire.CloseSessionTxn{Paths2Delete: []string{"/abc"}}, nil},
		{"an empty list, a digest", &wire.CloseSessionTxn{Paths2Delete: []string{}}, digest},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := wal.Txn{Header: hdr, Digest: c.digest}
			if c.record != nil {
				in.Record = c.record
			}
			out, err := wal.DecodeTxn(wal.AppendTxn(nil, &in))
			if err != nil {
				t.Fatal(err)
			}
			if out.Header != hdr {
				t.Fatalf("header %+v, want %+v", out.Header, hdr)
			}
			switch got := out.Record.(type) {
			case nil:
				if c.record != nil {
					t.Fatalf("no record, want %v", c.record.Paths2Delete)
				}
			case *wire.CloseSessionTxn:
				if c.record == nil || strings.Join(got.Paths2Delete, ",") != strings.Join(c.record.Paths2Delete, ",") {
					t.Fatalf("record %v, want %v", got.Paths2Delete, c.record)
				}
			default:
				t.Fatalf("a %T record", got)
			}
			if (out.Digest == nil) != (c.digest == nil) || out.Digest != nil && *out.Digest != *c.digest {
				t.Fatalf("digest %v, want %v", out.Digest, c.digest)
			}
		})
	}
}
