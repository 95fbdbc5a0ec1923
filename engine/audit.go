package engine

import (
	"context"
	"log/slog"
	"os/user"
	"strconv"
	"strings"

	"zkd/wire"
	"zkd/ztree"
)

// The audit log (audit.enable=true): ZooKeeper's audit events, as lines
// of the server log whose message is "audit", with ZooKeeper's fields in
// its order (session, user, ip, operation, znode, znode_type, acl, result)
// and only those an event has. A failure is logged at ERROR, the rest at
// INFO, as ZooKeeper's Slf4jAuditLogger logs them.
//
// The events are ZooKeeper's: the server's start and stop; each create,
// delete, setData, setAcl, multi and reconfig of a client connected to
// this server, once its txn is applied, whether it succeeded or failed;
// and, on every server, each ephemeral znode a closed or expired
// session's txn deletes.

// auditor writes the audit events; nil when audit.enable is off.
type auditor struct {
	log *slog.Logger
	// user is who runs the server, the user of its own events.
	user string
}

func newAuditor(cfg *Config, log *slog.Logger) *auditor {
	if !cfg.AuditEnable {
		return nil
	}
	return &auditor{log: log, user: processUser()}
}

// processUser is the name of the user running the process, as Java's
// user.name property holds it; "<NA>" when it cannot be found.
func processUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return "<NA>"
}

// event is one audit event's fields; empty ones are left out.
type auditEvent struct {
	session, user, ip, operation, znode, znodeType, acl string
	failed                                              bool
	result                                              string // when not success or failure
}

func (a *auditor) write(e auditEvent) {
	attrs := make([]slog.Attr, 0, 8)
	add := func(k, v string) {
		if v != "" {
			attrs = append(attrs, slog.String(k, v))
		}
	}
	add("session", e.session)
	add("user", e.user)
	add("ip", e.ip)
	add("operation", e.operation)
	add("znode", e.znode)
	add("znode_type", e.znodeType)
	add("acl", e.acl)
	level, result := slog.LevelInfo, "success"
	if e.failed {
		level, result = slog.LevelError, "failure"
	}
	if e.result != "" {
		result = e.result
	}
	attrs = append(attrs, slog.String("result", result))
	a.log.LogAttrs(context.Background(), level, "audit", attrs...)
}

// server logs the server's own start (result success or failure) or stop
// (result invoked: logged before the server has stopped).
func (a *auditor) server(operation, result string) {
	if a == nil {
		return
	}
	a.write(auditEvent{user: a.user, operation: operation, result: result, failed: result == "failure"})
}

// AuditStartFailure logs, when cfg turns the audit log on, that the server
// did not start, as ZooKeeper logs serverStart with result failure.
func AuditStartFailure(cfg *Config, log *slog.Logger) {
	newAuditor(cfg, log).server("serverStart", "failure")
}

func sessionHex(id int64) string { return "0x" + strconv.FormatUint(uint64(id), 16) }

// auditUsers is the user field of a client's event: the names its
// identities give (the address for ip, the user for digest, the principal
// for sasl and x509), in the order ZooKeeper lists them, joined by commas.
func auditUsers(ids []wire.Id) string {
	var names []string
	for _, id := range javaSetOrder(ids) {
		name := id.ID
		switch id.Scheme {
		case "digest":
			name, _, _ = strings.Cut(name, ":")
		case "ip", "sasl", "x509":
		default:
			// No authentication provider names these (super).
			continue
		}
		if strings.TrimSpace(name) != "" {
			names = append(names, name)
		}
	}
	return strings.Join(names, ",")
}

// auditMode is a create's znode_type: its CreateMode's name in lower case.
func auditMode(m wire.CreateMode) string { return strings.ToLower(m.String()) }

// auditACL is an ACL as ZooKeeper's audit log writes it: each entry as
// scheme:id:perms, with nothing between the entries.
func auditACL(acl []wire.ACL) string {
	var b strings.Builder
	for _, a := range acl {
		b.WriteString(a.ID.Scheme)
		b.WriteByte(':')
		b.WriteString(a.ID.ID)
		b.WriteByte(':')
		for _, p := range []struct {
			bit wire.Perm
			c   byte
		}{{wire.PermCreate, 'c'}, {wire.PermDelete, 'd'}, {wire.PermRead, 'r'}, {wire.PermWrite, 'w'}, {wire.PermAdmin, 'a'}} {
			if a.Perms&p.bit != 0 {
				b.WriteByte(p.c)
			}
		}
	}
	return b.String()
}

// write logs the events of a client's write whose txn gave res, on the
// server the client is connected to.
func (a *auditor) request(r *writeReq, res *ztree.Result) {
	e := auditEvent{session: sessionHex(r.sess), user: auditUsers(r.auth), ip: r.c.ip}
	failed := res.Type == wire.OpError
	e.failed = failed || res.Err != wire.ErrOK
	// A failed txn has no path of its own: the request's is logged.
	path := res.Path
	switch r.op {
	case wire.OpCreate, wire.OpCreate2, wire.OpCreateContainer:
		e.operation = "create"
		if req, ok := r.body.(*wire.CreateRequest); ok {
			e.znodeType = auditMode(req.Flags)
			if failed {
				path = req.Path
			}
		}
	case wire.OpDelete, wire.OpDeleteContainer:
		e.operation = "delete"
		if failed {
			switch req := r.body.(type) {
			case *wire.DeleteRequest:
				path = req.Path
			case *wire.DeleteContainerRequest:
				// Its body is read as a delete's (path, version),
				// as ZooKeeper's audit reads it; one that is not
				// gets no event there either.
				var d wire.DeleteRequest
				if _, err := d.Decode([]byte(req.Path), wire.Copy); err != nil {
					return
				}
				path = d.Path
			}
		}
	case wire.OpSetData:
		e.operation = "setData"
		if failed {
			path = r.set.Path
		}
	case wire.OpSetACL:
		e.operation = "setAcl"
		if req, ok := r.body.(*wire.SetACLRequest); ok {
			e.acl = auditACL(req.ACL)
			if failed {
				path = req.Path
			}
		}
	case wire.OpMulti:
		if !failed {
			a.multi(e, r, res)
			return
		}
		e.operation, path = "multiOperation", ""
	case wire.OpReconfig:
		e.operation = "reconfig"
	default:
		return
	}
	e.znode = path
	a.write(e)
}

// multi logs a multi's creates, deletes and setDatas when it succeeded,
// and one multiOperation failure when it did not. A create's znode_type is
// found by its path, so a sequential one has none, as in ZooKeeper.
func (a *auditor) multi(e auditEvent, r *writeReq, res *ztree.Result) {
	modes := map[string]string{}
	if req, ok := r.body.(*wire.MultiRequest); ok {
		for _, op := range req.Ops {
			if op.Type == wire.OpCreate || op.Type == wire.OpCreate2 || op.Type == wire.OpCreateContainer {
				modes[op.Path] = auditMode(op.Flags)
			}
		}
	}
	failed := false
	for _, sub := range res.Multi {
		o := e
		o.znode = sub.Path
		switch sub.Type {
		case wire.OpCreate, wire.OpCreate2, wire.OpCreateTTL, wire.OpCreateContainer:
			o.operation, o.znodeType = "create", modes[sub.Path]
		case wire.OpDelete, wire.OpDeleteContainer:
			o.operation = "delete"
		case wire.OpSetData:
			o.operation = "setData"
		case wire.OpError:
			failed = true
			continue
		default:
			continue
		}
		a.write(o)
	}
	if failed {
		e.operation, e.failed = "multiOperation", true
		a.write(e)
	}
}

// ephemerals logs the deletes of a closed or expired session's
// ephemerals, by the server's user: success for each znode deleted,
// failure for one its txn named that was gone already.
func (a *auditor) ephemerals(session int64, res *ztree.Result) {
	for _, d := range res.Ephemerals {
		a.write(auditEvent{session: sessionHex(session), user: a.user,
			operation: "ephemeralZNodeDeletionOnSessionCloseOrExpire", znode: d.Path, failed: !d.Deleted})
	}
}
