package engine

import (
	"sync/atomic"
	"testing"
	"time"

	"zkd/wire"
)

// manualClock is a server clock the test moves by hand.
type manualClock struct{ ms atomic.Int64 }

func newManualClock() *manualClock {
	c := &manualClock{}
	c.ms.Store(1_000_000)
	return c
}

func (c *manualClock) now() int64              { return c.ms.Load() }
func (c *manualClock) advance(d time.Duration) { c.ms.Add(d.Milliseconds()) }

// clockServer starts an in-process server on a manual clock, with a tick
// of 100 ms.
func clockServer(t *testing.T) (*Server, *manualClock) {
	clock := newManualClock()
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.TickTime = 100
	return startServer(t, cfg, Options{Clock: clock.now}), clock
}

// waitFor polls cond for up to 10 s of real time: the applier and the
// loops run on their own goroutines, however the clock moves.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10 s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// A session expires when the server's clock passes its timeout after its
// last packet, and not a tick before: the ephemeral it owned goes with it.
func TestSessionExpiryFollowsTheServersClock(t *testing.T) {
	s, clock := clockServer(t)
	c := dialRaw(t, s.Addr().String(), 2000)
	c.roundTrip(t, wire.OpCreate, &wire.CreateRequest{Path: "/eph", ACL: openACL, Flags: wire.ModeEphemeral})
	if s.sessions.count() != 1 {
		t.Fatalf("%d sessions", s.sessions.count())
	}
	// The deadline is the timeout after the last packet, rounded up to
	// a tick: 2.0-2.1 s. Just short of it the session stays, however
	// often the expiry pass runs.
	clock.advance(1999 * time.Millisecond)
	s.expireSessions()
	s.expireSessions()
	if s.sessions.count() != 1 {
		t.Fatal("the session expired before its timeout on the server's clock")
	}
	clock.advance(101 * time.Millisecond)
	s.expireSessions()
	waitFor(t, "the expired session's ephemeral goes", func() bool {
		_, err := s.view.Load().Exists("/eph")
		return err != nil
	})
	if n := s.sessions.count(); n != 0 {
		t.Fatalf("%d sessions after the expiry", n)
	}
}

// Every packet moves the deadline on the server's clock: a session that
// pings every 0.8 s of a 2 s timeout lives through 20 s of it.
func TestPingsMoveTheDeadlineOnTheServersClock(t *testing.T) {
	s, clock := clockServer(t)
	c := dialRaw(t, s.Addr().String(), 2000)
	c.roundTrip(t, wire.OpCreate, &wire.CreateRequest{Path: "/alive", ACL: openACL, Flags: wire.ModeEphemeral})
	for i := 0; i < 25; i++ {
		clock.advance(800 * time.Millisecond)
		s.expireSessions()
		c.send(t, wire.OpPing, nil)
		if xid, code, ok := c.next(); !ok || xid != wire.XidPing || code != wire.ErrOK {
			t.Fatalf("ping %d after %v on the server's clock: xid %d %v %v", i, time.Duration(i+1)*800*time.Millisecond, xid, code, ok)
		}
	}
	if s.sessions.count() != 1 {
		t.Fatal("a session that pinged within its timeout expired")
	}
	// Silent now: it goes once the clock passes its timeout.
	clock.advance(2200 * time.Millisecond)
	s.expireSessions()
	waitFor(t, "the silent session's ephemeral goes", func() bool {
		_, err := s.view.Load().Exists("/alive")
		return err != nil
	})
}
