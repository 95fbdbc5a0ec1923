package wire

import (
	"errors"
	"testing"
)

func TestCodeNames(t *testing.T) {
	cases := []struct {
		got, want string
	}{
		{OpGetChildren2.String(), "getChildren2"},
		{OpWhoAmI.String(), "whoAmI"},
		{OpCloseSession.String(), "closeSession"},
		{OpCode(10).String(), "OpCode(10)"},
		{ErrNoNode.String(), "NONODE"},
		{ErrThrottledOp.String(), "THROTTLEDOP"},
		{ErrCode(-9).String(), "ErrCode(-9)"},
		{ErrNodeExists.Error(), "zookeeper: NODEEXISTS (-110)"},
		{EventNodeChildrenChanged.String(), "NodeChildrenChanged"},
		{EventType(9).String(), "EventType(9)"},
		{StateExpired.String(), "Expired"},
		{KeeperState(2).String(), "KeeperState(2)"},
		{ModeEphemeralSequential.String(), "EPHEMERAL_SEQUENTIAL"},
		{CreateMode(7).String(), "CreateMode(7)"},
		{PermAll.String(), "cdrwa"},
		{(PermRead | PermAdmin).String(), "ra"},
		{Perm(0x40 | 1).String(), "r|0x40"},
		{WatcherAny.String(), "Any"},
		{WatcherType(0).String(), "WatcherType(0)"},
		{AddWatchPersistentRecursive.String(), "PERSISTENT_RECURSIVE"},
		{AddWatchMode(2).String(), "AddWatchMode(2)"},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

// The numeric values are the protocol; pin the ones most easily mistyped.
func TestCodeValues(t *testing.T) {
	pairs := []struct {
		got, want int32
	}{
		{int32(OpCreateTTL), 21}, {int32(OpMultiRead), 22}, {int32(OpSetWatches2), 105},
		{int32(OpAddWatch), 106}, {int32(OpWhoAmI), 107}, {int32(OpCloseSession), -11},
		{int32(ErrUnknownSession), -12}, {int32(ErrNewConfigNoQuorum), -13},
		{int32(ErrReconfigInProgress), -14}, {int32(ErrNoChildrenForEphemerals), -108},
		{int32(ErrSessionMoved), -118}, {int32(ErrQuotaExceeded), -125}, {int32(ErrThrottledOp), -127},
		{int32(StateExpired), -112}, {int32(StateClosed), 7}, {int32(EventNone), -1},
		{XidSetWatches, -8}, {XidAuth, -4},
	}
	for i, p := range pairs {
		if p.got != p.want {
			t.Errorf("pair %d: %d, want %d", i, p.got, p.want)
		}
	}
	if len(errNames) != 32 {
		t.Errorf("%d error codes, ZooKeeper 3.9 has 32", len(errNames))
	}
	var err error = ErrBadVersion
	var code ErrCode
	if !errors.As(err, &code) || code != ErrBadVersion || !code.Known() || ErrCode(-200).Known() {
		t.Error("ErrCode as error")
	}
}

func TestCreateModeFlags(t *testing.T) {
	type flags struct{ valid, eph, seq, cont, ttl bool }
	want := map[CreateMode]flags{
		ModePersistent:                  {true, false, false, false, false},
		ModeEphemeral:                   {true, true, false, false, false},
		ModePersistentSequential:        {true, false, true, false, false},
		ModeEphemeralSequential:         {true, true, true, false, false},
		ModeContainer:                   {true, false, false, true, false},
		ModePersistentWithTTL:           {true, false, false, false, true},
		ModePersistentSequentialWithTTL: {true, false, true, false, true},
		CreateMode(7):                   {},
		CreateMode(-1):                  {},
	}
	for m, w := range want {
		got := flags{m.Valid(), m.Ephemeral(), m.Sequential(), m.Container(), m.TTL()}
		if got != w {
			t.Errorf("%v: %+v, want %+v", m, got, w)
		}
	}
}
