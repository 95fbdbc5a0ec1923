package engine

import (
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"time"
	"unsafe"

	"zkd/internal/java"
	"zkd/internal/sasl"
	"zkd/wire"
	"zkd/ztree"
)

// isWrite reports whether op goes through the applier as a txn.
func isWrite(op wire.OpCode) bool {
	switch op {
	case wire.OpCreate, wire.OpCreate2, wire.OpCreateContainer, wire.OpCreateTTL,
		wire.OpDelete, wire.OpDeleteContainer, wire.OpSetData, wire.OpSetACL,
		wire.OpCheck, wire.OpMulti, wire.OpCloseSession, wire.OpReconfig:
		return true
	}
	return false
}

// readScratch holds the records a connection decodes its reads into, so
// the read path allocates nothing once warm.
type readScratch struct {
	pathWatch wire.PathWatchRequest
	path      wire.PathRequest
	children  []string
	data      wire.GetDataResponse
	stat      wire.StatResponse
	strs      wire.StringsResponse
	ch2       wire.GetChildren2Response
}

// bytesOf views a string from the tree as bytes, for encoding only.
func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// request handles one request after the handshake, on the connection's
// loop.
func (c *conn) request(p []byte) {
	var hdr wire.RequestHeader
	n, err := hdr.Decode(p, wire.Alias)
	if err != nil {
		c.s.log.Warn("closing connection: request header unreadable", "client", c.remote)
		c.setClosing()
		return
	}
	body := p[n:]
	if need := c.s.enforcedAuth; need != nil && hdr.Type != wire.OpAuth && hdr.Type != wire.OpSASL && !c.authenticatedWith(need) {
		// enforce.auth.enabled: as ZooKeeper, the request is answered
		// with SESSIONCLOSEDREQUIRESASLAUTH and the connection closed.
		c.s.log.Error("closing the connection of a session that has not authenticated with a scheme the server requires",
			"client", c.remote, "session", fmt.Sprintf("0x%x", c.sid.Load()), "required", strings.Join(need, ","))
		c.appendReplyFrame(hdr.Xid, 0, wire.ErrSessionClosedRequireSASLAuth, nil)
		c.setClosing()
		return
	}
	if hdr.Type != wire.OpAuth && hdr.Type != wire.OpSASL {
		// ZooKeeper answers these two before its request pipeline,
		// which is where a connection's last op is counted.
		c.lastOp.Store(int32(hdr.Type))
	}
	if isWrite(hdr.Type) {
		c.write(hdr, body)
		return
	}
	if se := c.sess; se != nil && hdr.Type != wire.OpAuth && hdr.Type != wire.OpSASL && se.movedAway() {
		// The leader has heard the client resume on another server: this
		// connection is stale, and goes without an answer, as
		// ZooKeeper's leader checks the session of reads and pings too.
		c.s.log.Info("closing a connection whose session moved to another server",
			"session", fmt.Sprintf("0x%x", se.id), "client", c.remote)
		c.setClosing()
		return
	}
	c.reads++
	c.read(hdr, body)
}

// write decodes a write request and hands it to the applier.
func (c *conn) write(hdr wire.RequestHeader, body []byte) {
	s := c.s
	if c.sess.closing.Load() && hdr.Type != wire.OpCloseSession {
		c.appendReply(hdr.Xid, c.lp.v.Zxid(), wire.ErrSessionExpired, nil)
		c.setClosing()
		return
	}
	if hdr.Type == wire.OpCloseSession {
		c.setInflight(c.inflight + 1)
		s.closeSession(c.sess, c, hdr.Xid)
		return
	}
	c.setInflight(c.inflight + 1)
	// c.auth is copied on change (addAuth), so the request may share it.
	r := newWriteReq()
	r.c, r.sess, r.xid, r.op, r.auth, r.start = c, c.sid.Load(), hdr.Xid, hdr.Type, c.auth, c.arrived
	if r.start.IsZero() {
		r.start = time.Now() // consumed after its traffic, as a stalled connection's
	}
	var err error
	if hdr.Type == wire.OpSetData {
		// Decoded in place into the request's own copy of the body, so
		// a setData allocates nothing here once the pool is warm.
		r.raw = append(r.raw[:0], body...)
		r.body = &r.set
		_, err = r.set.Decode(r.raw, wire.Alias)
	} else {
		r.body, _ = wire.RequestRecord(hdr.Type)
		_, err = r.body.Decode(body, wire.Copy)
	}
	if err != nil {
		// ZooKeeper's PrepRequestProcessor turns a body it cannot read
		// into a MARSHALLINGERROR error txn and keeps the connection;
		// going through the applier keeps the reply in order.
		r.body, r.refuse = nil, wire.ErrMarshallingError
		c.submit(r)
		return
	}
	switch hdr.Type {
	case wire.OpDeleteContainer:
		// Only the server's container reaper deletes containers this
		// way; ZooKeeper refuses (and logs) a client's deleteContainer.
		r.refuse = wire.ErrBadArguments
	case wire.OpReconfig:
		// A standalone ZooKeeper logs an error txn for reconfig:
		// RECONFIGDISABLED, or UNIMPLEMENTED when reconfigEnabled.
		r.refuse = wire.ErrReconfigDisabled
		if s.cfg.ReconfigEnabled {
			r.refuse = wire.ErrUnimplemented
		}
	}
	c.submit(r)
}

// read answers a request that is not a txn, from the published view.
func (c *conn) read(hdr wire.RequestHeader, body []byte) {
	s := c.s
	// The loop's pass holds its read slot, and v is the pass's view (or
	// the version a read that waited is answered from, pinned for it).
	v := c.lp.v
	zxid := v.Zxid()
	sc := &c.lp.scratch
	bad := func() { c.appendReply(hdr.Xid, zxid, wire.ErrMarshallingError, nil) }
	switch hdr.Type {
	case wire.OpPing:
		c.appendReply(wire.XidPing, zxid, wire.ErrOK, nil)

	case wire.OpGetData:
		if _, err := sc.pathWatch.Decode(body, wire.Alias); err != nil {
			bad()
			return
		}
		data, st, err := v.GetData(sc.pathWatch.Path, c.auth)
		if err != nil {
			c.appendReply(hdr.Xid, zxid, errCode(err), nil)
			return
		}
		sc.data.Data, sc.data.Stat = bytesOf(data), st
		c.appendReply(hdr.Xid, zxid, wire.ErrOK, &sc.data)
		c.countRead(sc.pathWatch.Path, len(data))
		sc.data.Data = nil
		if sc.pathWatch.Watch {
			c.watch(v, sc.pathWatch.Path, ztree.WatchData)
		}

	case wire.OpExists:
		if _, err := sc.pathWatch.Decode(body, wire.Alias); err != nil {
			bad()
			return
		}
		st, err := v.Exists(sc.pathWatch.Path)
		if err != nil {
			c.appendReply(hdr.Xid, zxid, errCode(err), nil)
		} else {
			sc.stat.Stat = st
			c.appendReply(hdr.Xid, zxid, wire.ErrOK, &sc.stat)
			c.countRead(sc.pathWatch.Path, 0)
		}
		if sc.pathWatch.Watch && (err == nil || errCode(err) == wire.ErrNoNode) {
			c.watch(v, sc.pathWatch.Path, ztree.WatchData)
		}

	case wire.OpGetChildren, wire.OpGetChildren2:
		if _, err := sc.pathWatch.Decode(body, wire.Alias); err != nil {
			bad()
			return
		}
		// An empty list goes out as length 0; jute's -1 means null, which
		// clients do not expect here.
		if sc.children == nil {
			sc.children = make([]string, 0, 16)
		}
		kids, st, err := v.AppendChildren(sc.children[:0], sc.pathWatch.Path, c.auth)
		sc.children = kids
		if err != nil {
			c.appendReply(hdr.Xid, zxid, errCode(err), nil)
			return
		}
		names := 0
		for _, k := range kids {
			names += len(k)
		}
		c.countRead(sc.pathWatch.Path, names)
		if hdr.Type == wire.OpGetChildren {
			sc.strs.Strings = kids
			c.appendReply(hdr.Xid, zxid, wire.ErrOK, &sc.strs)
			sc.strs.Strings = nil
		} else {
			sc.ch2.Children, sc.ch2.Stat = kids, st
			c.appendReply(hdr.Xid, zxid, wire.ErrOK, &sc.ch2)
			sc.ch2.Children = nil
		}
		clear(kids)
		if sc.pathWatch.Watch {
			c.watch(v, sc.pathWatch.Path, ztree.WatchChild)
		}

	case wire.OpGetACL:
		if _, err := sc.path.Decode(body, wire.Alias); err != nil {
			bad()
			return
		}
		acl, st, err := v.ACL(sc.path.Path, c.auth)
		if err != nil {
			c.appendReply(hdr.Xid, zxid, errCode(err), nil)
			return
		}
		c.appendReply(hdr.Xid, zxid, wire.ErrOK, &wire.GetACLResponse{ACL: acl, Stat: st})

	case wire.OpGetAllChildrenNumber:
		if _, err := sc.path.Decode(body, wire.Alias); err != nil {
			bad()
			return
		}
		n, err := v.AllChildrenNumber(sc.path.Path, c.auth)
		if err != nil {
			c.appendReply(hdr.Xid, zxid, errCode(err), nil)
			return
		}
		c.appendReply(hdr.Xid, zxid, wire.ErrOK, &wire.GetAllChildrenNumberResponse{TotalNumber: int32(n)})

	case wire.OpGetEphemerals:
		if _, err := sc.path.Decode(body, wire.Alias); err != nil {
			bad()
			return
		}
		eph := v.AppendEphemerals([]string{}, c.sid.Load(), sc.path.Path)
		c.appendReply(hdr.Xid, zxid, wire.ErrOK, &wire.StringsResponse{Strings: eph})

	case wire.OpSync:
		// Standalone, every write before this request is applied: the
		// session's own through FIFO, everyone's through the view.
		if _, err := sc.path.Decode(body, wire.Alias); err != nil {
			bad()
			return
		}
		c.appendReply(hdr.Xid, zxid, wire.ErrOK, &wire.SyncResponse{Path: sc.path.Path})

	case wire.OpMultiRead:
		var req wire.MultiRequest
		if _, err := req.Decode(body, wire.Copy); err != nil {
			bad()
			return
		}
		if len(req.Ops) > 0 && req.Ops[0].Type != wire.OpGetData && req.Ops[0].Type != wire.OpGetChildren {
			// Writes in a multiRead (they cannot be mixed with reads:
			// that does not decode). ZooKeeper fails on the first op
			// with MARSHALLINGERROR, and sends the results so far: none.
			c.appendReplyWithBody(hdr.Xid, zxid, wire.ErrMarshallingError, &wire.MultiResponse{})
			return
		}
		res := v.MultiRead(req.Ops, c.auth)
		c.appendReply(hdr.Xid, zxid, wire.ErrOK, &wire.MultiResponse{Results: res})
		for i, op := range req.Ops {
			if res[i].Err != wire.ErrOK {
				continue
			}
			n := len(res[i].Data)
			for _, k := range res[i].Children {
				n += len(k)
			}
			c.countRead(op.Path, n)
		}
		// No watches: ZooKeeper reads a multiRead's ops without their
		// watch flags.

	case wire.OpSetWatches, wire.OpSetWatches2:
		var w wire.SetWatches2
		if hdr.Type == wire.OpSetWatches {
			var w1 wire.SetWatches
			if _, err := w1.Decode(body, wire.Copy); err != nil {
				bad()
				return
			}
			w = wire.SetWatches2{RelativeZxid: w1.RelativeZxid, DataWatches: w1.DataWatches,
				ExistWatches: w1.ExistWatches, ChildWatches: w1.ChildWatches}
		} else if _, err := w.Decode(body, wire.Copy); err != nil {
			bad()
			return
		}
		// Events for watches whose condition already changed go out
		// before the reply, as ZooKeeper sends them. The session's later
		// reads wait for the version the watches took effect at, as
		// after addWatch: a persistent watch tells of no change before it.
		evs, z := s.tree.Load().SetWatches(c.sid.Load(), w.RelativeZxid, w.DataWatches, w.ExistWatches,
			w.ChildWatches, w.PersistentWatches, w.PersistentRecursiveWatches)
		for _, ev := range evs {
			c.appendEvent(ev.Type, ev.Path, ev.Zxid)
		}
		c.needZxid = max(c.needZxid, z)
		c.appendReply(hdr.Xid, zxid, wire.ErrOK, nil)

	case wire.OpAddWatch:
		var req wire.AddWatchRequest
		if _, err := req.Decode(body, wire.Alias); err != nil {
			bad()
			return
		}
		kind := ztree.WatchPersistent
		if req.Mode == wire.AddWatchPersistentRecursive {
			kind = ztree.WatchRecursive
		}
		// The session's later reads wait for the version the watch took
		// effect at: what changed before it they must see, since no
		// event will tell them.
		if z := s.tree.Load().AddWatch(c.sid.Load(), string([]byte(req.Path)), kind); z > c.needZxid {
			c.needZxid = z
		}
		// ZooKeeper answers addWatch with an ErrorResponse body of 0,
		// and the Java client reads it.
		c.appendReply(hdr.Xid, zxid, wire.ErrOK, &wire.ErrorResponse{Err: 0})

	case wire.OpCheckWatches, wire.OpRemoveWatches:
		var req wire.WatchesRequest
		if _, err := req.Decode(body, wire.Alias); err != nil {
			bad()
			return
		}
		var err error
		if hdr.Type == wire.OpCheckWatches {
			err = s.tree.Load().CheckWatches(c.sid.Load(), req.Path, req.Type)
		} else {
			err = s.tree.Load().RemoveWatches(c.sid.Load(), req.Path, req.Type)
		}
		c.appendReply(hdr.Xid, zxid, errCode(err), nil)

	case wire.OpAuth:
		c.authenticate(hdr, body)

	case wire.OpWhoAmI:
		info := make([]wire.ClientInfo, len(c.auth))
		for i, id := range javaSetOrder(c.auth) {
			user := id.ID
			if id.Scheme == "digest" {
				// The digest provider names the user, not the hash.
				user, _, _ = strings.Cut(user, ":")
			}
			info[i] = wire.ClientInfo{AuthScheme: id.Scheme, User: user}
		}
		c.appendReply(hdr.Xid, zxid, wire.ErrOK, &wire.WhoAmIResponse{ClientInfo: info})

	case wire.OpSASL:
		c.saslStep(hdr, body)

	default:
		s.log.Debug("unknown request type", "type", int32(hdr.Type), "client", c.remote)
		// ZooKeeper answers with zxid -1 (and then drops the
		// connection, which zkd does not: bad input hurts no one).
		c.appendReply(hdr.Xid, -1, wire.ErrUnimplemented, nil)
	}
}

// watch registers a one-shot watch for a read just answered from v; an
// event that fired in between goes out after the reply.
func (c *conn) watch(v *ztree.View, path string, kind ztree.WatchKind) {
	if ev, fired := c.s.tree.Load().Watch(v, c.sid.Load(), string([]byte(path)), kind); fired {
		c.appendEvent(ev.Type, ev.Path, ev.Zxid)
	}
}

// authenticate handles addauth as ZooKeeper 3.8's two built-in providers
// do. digest takes any bytes: the id is the part before the first colon
// (the whole when there is none) and the base64 SHA-1 of them all, and a
// match of superDigest adds super ahead of it. ip ignores its bytes and
// adds the client's own address. Any other scheme has no provider:
// AUTHFAILED, then the connection closes.
func (c *conn) authenticate(hdr wire.RequestHeader, body []byte) {
	var ap wire.AuthPacket
	// ZooKeeper answers auth with the request's own xid (-4 from most
	// clients, an ordinary one from some) and zxid 0.
	const zxid = 0
	if _, err := ap.Decode(body, wire.Copy); err != nil {
		c.appendReplyFrame(hdr.Xid, zxid, wire.ErrMarshallingError, nil)
		return
	}
	switch ap.Scheme {
	case "digest":
		user, _, _ := strings.Cut(string(ap.Auth), ":")
		sum := sha1.Sum(ap.Auth)
		id := user + ":" + base64.StdEncoding.EncodeToString(sum[:])
		if sd := c.s.cfg.SuperDigest; sd != "" && sd == id {
			c.addAuth(wire.Id{Scheme: "super", ID: ""})
		}
		c.addAuth(wire.Id{Scheme: "digest", ID: id})
	case "ip":
		c.addAuth(wire.Id{Scheme: "ip", ID: c.ip})
	default:
		c.s.log.Warn("authentication failed: no provider for the scheme", "scheme", ap.Scheme, "client", c.remote)
		c.appendReplyFrame(hdr.Xid, zxid, wire.ErrAuthFailed, nil)
		c.setClosing()
		return
	}
	c.s.tree.Load().SetAuth(c.sid.Load(), c.auth)
	c.appendReplyFrame(hdr.Xid, zxid, wire.ErrOK, nil)
}

// authenticatedWith reports whether the session holds an identity of one
// of schemes.
func (c *conn) authenticatedWith(schemes []string) bool {
	for _, id := range c.auth {
		if slices.Contains(schemes, id.Scheme) {
			return true
		}
	}
	return false
}

// saslFailureLinger is how long, in ms, a connection whose SASL exchange
// failed stays open, reading and dropping, after the AuthFailed reply.
const saslFailureLinger = 200

// saslStep takes one token of a client's SASL exchange (DIGEST-MD5) and
// answers with the server's, as ZooKeeper does: zxid 0; once the client
// has proved its password, the session holds the identity sasl:USER (and
// super, for zookeeper.superUser). A failed exchange is answered with
// AuthFailed and the connection closed; the session is left to expire.
func (c *conn) saslStep(hdr wire.RequestHeader, body []byte) {
	users := c.s.saslUsers
	if users == nil {
		// With no SASL configured ZooKeeper 3.8 answers a sasl request
		// with an empty (null) token, zxid 0, and keeps the connection.
		c.appendReplyFrame(hdr.Xid, 0, wire.ErrOK, &wire.SetSASLResponse{})
		return
	}
	var req wire.GetSASLRequest
	if _, err := req.Decode(body, wire.Copy); err != nil {
		c.appendReplyFrame(hdr.Xid, 0, wire.ErrMarshallingError, nil)
		return
	}
	if c.sasl == nil {
		c.sasl = sasl.NewDigest(func(user string) (string, bool) { pw, ok := users[user]; return pw, ok })
	}
	token, err := c.sasl.Step(req.Token)
	if err != nil {
		c.s.log.Warn("SASL authentication failed; closing the connection", "client", c.remote,
			"session", fmt.Sprintf("0x%x", c.sid.Load()), "err", err)
		// The (null) token goes with the error: a Java client reads it
		// and goes to AuthFailed; without it, it takes the short reply
		// for a broken connection and tries again, unauthenticated.
		c.appendFrameWithBody(hdr.Xid, 0, wire.ErrAuthFailed, &wire.SetSASLResponse{})
		c.lingerUntil = c.s.mono() + saslFailureLinger
		c.setClosing()
		return
	}
	if c.sasl.Complete() {
		user := c.sasl.User()
		c.addAuth(wire.Id{Scheme: "sasl", ID: user})
		if su := c.s.cfg.SASLSuperUser; su != "" && su == user {
			c.addAuth(wire.Id{Scheme: "super", ID: ""})
		}
		c.s.tree.Load().SetAuth(c.sid.Load(), c.auth)
		c.s.log.Info("SASL authenticated", "session", fmt.Sprintf("0x%x", c.sid.Load()), "user", user, "client", c.remote)
	}
	c.appendReplyFrame(hdr.Xid, 0, wire.ErrOK, &wire.SetSASLResponse{Token: token})
}

// javaSetOrder lists ids in the order ZooKeeper's whoami does: its
// connection keeps them in a Java hash set, which iterates by bucket
// (the jute Id's hashCode, spread and masked to the table size), and in
// insertion order within a bucket.
func javaSetOrder(ids []wire.Id) []wire.Id {
	table := 16
	for len(ids) > table*3/4 {
		table *= 2
	}
	bucket := func(id wire.Id) int {
		h := 37*(37*17+java.StringHash(id.Scheme)) + java.StringHash(id.ID)
		return int((h ^ int32(uint32(h)>>16)) & int32(table-1))
	}
	out := slices.Clone(ids)
	slices.SortStableFunc(out, func(a, b wire.Id) int { return bucket(a) - bucket(b) })
	return out
}

func (c *conn) addAuth(id wire.Id) {
	for _, a := range c.auth {
		if a == id {
			return
		}
	}
	auth := make([]wire.Id, len(c.auth), len(c.auth)+1)
	copy(auth, c.auth)
	c.auth = append(auth, id)
}

// errCode maps an error from ztree to the code a client sees; ztree's
// errors are wire.ErrCode values already.
func errCode(err error) wire.ErrCode {
	if err == nil {
		return wire.ErrOK
	}
	if code, ok := err.(wire.ErrCode); ok {
		return code
	}
	panic(fmt.Sprintf("engine: ztree returned an error that is not a code: %v", err))
}
