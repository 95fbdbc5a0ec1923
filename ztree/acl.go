package ztree

import (
	"crypto/sha1"
	"encoding/base64"
	"net/netip"
	"strconv"
	"strings"

	"zkd/wire"
)

// Well-known ACLs (ZooDefs.Ids).
var (
	// OpenACL is world:anyone with every permission.
	OpenACL = []wire.ACL{{Perms: wire.PermAll, ID: wire.Id{Scheme: "world", ID: "anyone"}}}
	// ReadACL is world:anyone read-only, the ACL of /zookeeper/config.
	ReadACL = []wire.ACL{{Perms: wire.PermRead, ID: wire.Id{Scheme: "world", ID: "anyone"}}}
)

// aclTable interns ACL lists: a znode stores a small index, as ZooKeeper's
// ReferenceCountedACLCache does, and snapshots carry the table. Entries are
// only ever appended, so a published version can keep reading the prefix it
// captured while the applier appends. An ACL list that no znode uses any
// more stays in the table; distinct ACL lists are few in practice.
type aclTable struct {
	lists [][]wire.ACL
	index map[string]uint32
}

func newACLTable() *aclTable {
	t := &aclTable{index: make(map[string]uint32)}
	t.intern(OpenACL)
	return t
}

// intern returns the index of acl, adding a copy of it when new.
func (t *aclTable) intern(acl []wire.ACL) uint32 {
	var buf [256]byte
	key := buf[:0]
	for i := range acl {
		key = acl[i].Append(key)
	}
	if i, ok := t.index[string(key)]; ok {
		return i
	}
	cp := make([]wire.ACL, len(acl))
	for i, a := range acl {
		cp[i] = wire.ACL{Perms: a.Perms, ID: wire.Id{Scheme: strings.Clone(a.ID.Scheme), ID: strings.Clone(a.ID.ID)}}
	}
	i := uint32(len(t.lists))
	t.lists = append(t.lists, cp)
	t.index[string(key)] = i
	return i
}

// checkACL reports whether a session with identities ids may do perm on a
// znode with ACL acl (ZooKeeperServer.checkACL): an empty ACL allows
// everything, a "super" identity allows everything, otherwise some entry
// granting perm must match one of the ids.
func checkACL(acl []wire.ACL, perm wire.Perm, ids []wire.Id) bool {
	if len(acl) == 0 {
		return true
	}
	for _, id := range ids {
		if id.Scheme == "super" {
			return true
		}
	}
	for i := range acl {
		a := &acl[i]
		if a.Perms&perm == 0 {
			continue
		}
		if a.ID.Scheme == "world" && a.ID.ID == "anyone" {
			return true
		}
		for _, id := range ids {
			if id.Scheme == a.ID.Scheme && idMatches(id.Scheme, id.ID, a.ID.ID) {
				return true
			}
		}
	}
	return false
}

// permits is checkACL, unless the server skips ACL checks.
func (o *Options) permits(acl []wire.ACL, perm wire.Perm, ids []wire.Id) bool {
	return o.SkipACL || checkACL(acl, perm, ids)
}

// idMatches is the matches() of ZooKeeper's built-in authentication
// providers: digest ids match exactly, ip ids match an address or a
// network in address/bits form. Other schemes have no provider here.
func idMatches(scheme, id, aclExpr string) bool {
	switch scheme {
	case "digest", "sasl", "x509":
		return id == aclExpr
	case "ip":
		return ipMatches(id, aclExpr)
	}
	return false
}

func ipMatches(id, expr string) bool {
	addr, err := netip.ParseAddr(id)
	if err != nil {
		return false
	}
	prefix, ok := parseIPExpr(expr)
	if !ok || addr.Is4() != prefix.Addr().Is4() {
		return false
	}
	return prefix.Contains(addr)
}

// parseIPExpr parses an ip ACL id: an address, or address/bits.
func parseIPExpr(expr string) (netip.Prefix, bool) {
	a, bits, hasBits := strings.Cut(expr, "/")
	addr, err := netip.ParseAddr(a)
	if err != nil || addr.Zone() != "" {
		return netip.Prefix{}, false
	}
	n := addr.BitLen()
	if hasBits {
		b, err := strconv.Atoi(bits)
		if err != nil || b < 0 || b > addr.BitLen() {
			return netip.Prefix{}, false
		}
		n = b
	}
	p, err := addr.Prefix(n)
	return p, err == nil
}

// validACLID is the isValid() of the providers: a digest id is user:hash
// (exactly two parts), an ip id is an address or network.
func validACLID(scheme, id string) bool {
	switch scheme {
	case "digest":
		// Java's id.split(":") must give two parts; split drops
		// trailing empty strings, so "user:hash:" passes too.
		parts := strings.Split(id, ":")
		for len(parts) > 0 && parts[len(parts)-1] == "" {
			parts = parts[:len(parts)-1]
		}
		return len(parts) == 2
	case "ip":
		_, ok := parseIPExpr(id)
		return ok
	}
	return false
}

// validSASLID is SASLAuthenticationProvider.isValid: an id is valid when
// it parses as a Kerberos principal, name[/host]@REALM, or has no @.
func validSASLID(id string) bool {
	name, realm, at := strings.Cut(id, "@")
	if !at {
		return true
	}
	service, host, slash := strings.Cut(name, "/")
	return !strings.ContainsAny(realm, "/@") && !strings.Contains(service, "@") &&
		(!slash || !strings.ContainsAny(host, "/@"))
}

// validX500Name is, roughly, X509AuthenticationProvider.isValid: the id
// reads as a distinguished name, attribute=value pairs separated by
// commas.
func validX500Name(id string) bool {
	for _, rdn := range strings.Split(id, ",") {
		if k, _, ok := strings.Cut(rdn, "="); !ok || strings.TrimSpace(k) == "" {
			return false
		}
	}
	return true
}

// authenticatedScheme reports whether an identity of this scheme expands an
// "auth" ACL entry (ServerAuthenticationProvider.isAuthenticated): an ip
// address is not an authentication, and super has no provider.
func authenticatedScheme(scheme string) bool {
	return scheme == "digest" || scheme == "sasl" || scheme == "x509"
}

// fixupACL checks an ACL from a create or setACL and expands "auth" entries
// into the session's authenticated identities (PrepRequestProcessor.fixupACL).
// Duplicates are removed first; an empty list, an unknown scheme, a malformed
// id or an "auth" entry with nothing to expand to is INVALIDACL.
func fixupACL(acl []wire.ACL, ids []wire.Id, opts Options) ([]wire.ACL, error) {
	uniq := make([]wire.ACL, 0, len(acl))
	for _, a := range acl {
		dup := false
		for _, u := range uniq {
			if u == a {
				dup = true
				break
			}
		}
		if !dup {
			uniq = append(uniq, a)
		}
	}
	if len(uniq) == 0 {
		return nil, wire.ErrInvalidACL
	}
	out := make([]wire.ACL, 0, len(uniq))
	for _, a := range uniq {
		switch {
		case a.ID.Scheme == "world" && a.ID.ID == "anyone":
			out = append(out, a)
		case a.ID.Scheme == "auth":
			found := false
			for _, id := range ids {
				if authenticatedScheme(id.Scheme) {
					found = true
					out = append(out, wire.ACL{Perms: a.Perms, ID: id})
				}
			}
			if !found {
				return nil, wire.ErrInvalidACL
			}
		case validACLID(a.ID.Scheme, a.ID.ID), opts.SASLACLs && a.ID.Scheme == "sasl" && validSASLID(a.ID.ID),
			opts.X509ACLs && a.ID.Scheme == "x509" && validX500Name(a.ID.ID):
			out = append(out, a)
		default:
			return nil, wire.ErrInvalidACL
		}
	}
	return out, nil
}

// RedactACL hides the password hashes of digest entries, as ZooKeeper does
// for a getACL by a session that has READ but not ADMIN on the znode.
func RedactACL(acl []wire.ACL) []wire.ACL {
	out := make([]wire.ACL, len(acl))
	for i, a := range acl {
		if a.ID.Scheme == "digest" {
			user, _, _ := strings.Cut(a.ID.ID, ":")
			a.ID.ID = user + ":x"
		}
		out[i] = a
	}
	return out
}

// DigestID is the digest scheme id of a user and password, as addauth
// digest user:password and ACLs name it: user:base64(sha1(user:password)).
func DigestID(user, password string) string {
	sum := sha1.Sum([]byte(user + ":" + password))
	return user + ":" + base64.StdEncoding.EncodeToString(sum[:])
}
