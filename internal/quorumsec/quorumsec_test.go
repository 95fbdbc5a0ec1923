package quorumsec

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// exchange runs a joining server (learner) against the one it joins
// (server) over a pipe, and returns each side's error and what the server
// reads after the exchange.
func exchange(t *testing.T, learner, server *Config, after []byte) (learnErr, admitErr error, rest []byte) {
	t.Helper()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	a.SetDeadline(time.Now().Add(5 * time.Second))
	b.SetDeadline(time.Now().Add(5 * time.Second))
	done := make(chan error, 1)
	go func() {
		err := learner.Learn(a, "server")
		if err == nil {
			_, err = a.Write(after)
		}
		done <- err
		a.Close()
	}()
	br := bufio.NewReader(b)
	admitErr = server.Admit(br, b, "learner")
	if admitErr == nil {
		rest, _ = io.ReadAll(br)
	} else {
		b.Close()
	}
	return <-done, admitErr, rest
}

func TestQuorumSASL(t *testing.T) {
	users := map[string]string{"peer": "secret"}
	server := func(require bool) *Config {
		return &Config{SASL: true, ServerRequire: require, LearnerRequire: require, Users: users}
	}
	learner := func(user, pw string) *Config {
		return &Config{LearnerRequire: true, User: user, Password: pw}
	}
	hello := []byte("FOLLOWERINFO and the rest")

	// The right password: both sides done, and the server reads what
	// follows the exchange, not a byte lost.
	le, ae, rest := exchange(t, learner("peer", "secret"), server(true), hello)
	if le != nil || ae != nil || !bytes.Equal(rest, hello) {
		t.Fatalf("right password: learner %v, server %v, then read %q", le, ae, rest)
	}

	// A wrong password, an unknown user: the learner is told, the server
	// refuses.
	for _, c := range []*Config{learner("peer", "guess"), learner("eve", "secret")} {
		le, ae, _ := exchange(t, c, server(true), hello)
		if le == nil || !errors.Is(ae, ErrRefused) {
			t.Fatalf("%s/%s: learner %v, server %v; want both to fail", c.User, c.Password, le, ae)
		}
	}

	// A server that does not authenticate: refused where it is required,
	// let in (its bytes intact) where it is not.
	if _, ae, _ := exchange(t, &Config{}, server(true), hello); !errors.Is(ae, ErrRefused) {
		t.Fatalf("no authentication, required: server %v, want refused", ae)
	}
	if _, ae, rest := exchange(t, &Config{}, server(false), hello); ae != nil || !bytes.Equal(rest, hello) {
		t.Fatalf("no authentication, not required: server %v, read %q", ae, rest)
	}
	// A wrong password where authentication is not required: let in, as
	// ZooKeeper lets it in during a migration.
	if _, ae, _ := exchange(t, learner("peer", "guess"), server(false), nil); ae != nil {
		t.Fatalf("wrong password, not required: server %v, want let in", ae)
	}
	// Nil configs: no exchange at all.
	var none *Config
	if le, ae, rest := exchange(t, none, none, hello); le != nil || ae != nil || !bytes.Equal(rest, hello) {
		t.Fatalf("no security: %v %v %q", le, ae, rest)
	}
}

// A server that claims success before proving anything is not believed:
// the learner checks the server's proof of the password.
func TestQuorumSASLLearnerChecksTheServer(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	a.SetDeadline(time.Now().Add(5 * time.Second))
	b.SetDeadline(time.Now().Add(5 * time.Second))
	go func() {
		readAuth(b)
		writeAuth(b, authSuccess, []byte("rspauth=0123456789abcdef0123456789abcdef"))
	}()
	err := (&Config{LearnerRequire: true, User: "peer", Password: "secret"}).Learn(a, "server")
	if !errors.Is(err, ErrRefused) {
		t.Fatalf("a server's early success: %v, want refused", err)
	}
}

// The exchange's records are ZooKeeper's QuorumAuthPacket: int64 magic
// (0x5f2435013501edcc), int32 status, buffer token (-1 for none).
func TestQuorumAuthPacket(t *testing.T) {
	var b bytes.Buffer
	writeAuth(&b, authInProgress, []byte{})
	writeAuth(&b, authError, nil)
	want := []byte{0x5f, 0x24, 0x35, 0x01, 0x35, 0x01, 0xed, 0xcc, 0, 0, 0, 0, 0, 0, 0, 0,
		0x5f, 0x24, 0x35, 0x01, 0x35, 0x01, 0xed, 0xcc, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	if !bytes.Equal(b.Bytes(), want) {
		t.Fatalf("got % x\nwant % x", b.Bytes(), want)
	}
	// A token longer than any exchange needs is refused unread.
	var big bytes.Buffer
	head := make([]byte, 16)
	binary.BigEndian.PutUint64(head, uint64(authMagic))
	binary.BigEndian.PutUint32(head[12:], 1<<30)
	big.Write(head)
	if _, _, err := readAuth(&big); err == nil || !strings.Contains(err.Error(), "bytes") {
		t.Fatalf("a 1 GB token: %v", err)
	}
}

// A server cannot skip the exchange by saying it is done: a first packet
// that claims success, or an error, is a refusal where authentication is
// required (the CVE-2023-44981 class: no joining server is let in
// without proving a password).
func TestQuorumSASLCannotBeSkipped(t *testing.T) {
	for _, status := range []int32{authSuccess, authError, 7} {
		a, b := net.Pipe()
		a.SetDeadline(time.Now().Add(5 * time.Second))
		b.SetDeadline(time.Now().Add(5 * time.Second))
		go func() {
			writeAuth(a, status, []byte("rspauth=x"))
			io.Copy(io.Discard, a)
		}()
		server := &Config{SASL: true, ServerRequire: true, LearnerRequire: true, Users: map[string]string{"peer": "secret"}}
		if err := server.Admit(bufio.NewReader(b), b, "learner"); !errors.Is(err, ErrRefused) {
			t.Errorf("a first packet with status %d: %v, want refused", status, err)
		}
		a.Close()
		b.Close()
	}
}
