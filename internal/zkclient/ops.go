package zkclient

import (
	"errors"

	"zkd/wire"
)

// The requests zkd's tools make, one method each. Paths are sent as they
// are: checking them is the caller's.

// Get is getData: the data (nil for none) and the Stat.
func (c *Conn) Get(path string, watch bool) ([]byte, wire.Stat, error) {
	var r wire.GetDataResponse
	err := c.Call(wire.OpGetData, &wire.PathWatchRequest{Path: path, Watch: watch}, &r)
	return r.Data, r.Stat, err
}

// Children is getChildren2: the children's names, in the server's order,
// and the parent's Stat.
func (c *Conn) Children(path string, watch bool) ([]string, wire.Stat, error) {
	var r wire.GetChildren2Response
	err := c.Call(wire.OpGetChildren2, &wire.PathWatchRequest{Path: path, Watch: watch}, &r)
	return r.Children, r.Stat, err
}

// Exists is exists: ok false (and no error) when there is no znode, which
// with watch set leaves a watch for its creation.
func (c *Conn) Exists(path string, watch bool) (wire.Stat, bool, error) {
	var r wire.StatResponse
	err := c.Call(wire.OpExists, &wire.PathWatchRequest{Path: path, Watch: watch}, &r)
	if errors.Is(err, wire.ErrNoNode) {
		return r.Stat, false, nil // with watch set, a watch for its creation
	}
	return r.Stat, err == nil, err
}

// Set is setData.
func (c *Conn) Set(path string, data []byte, version int32) (wire.Stat, error) {
	var r wire.StatResponse
	err := c.Call(wire.OpSetData, &wire.SetDataRequest{Path: path, Data: data, Version: version}, &r)
	return r.Stat, err
}

// Create creates a znode of the given mode (a container and a TTL are
// modes too; ttl is in ms, for the TTL modes) and returns its path.
func (c *Conn) Create(path string, data []byte, acl []wire.ACL, mode wire.CreateMode, ttl int64) (string, error) {
	var r wire.Create2Response
	var err error
	switch mode {
	case wire.ModeContainer:
		err = c.Call(wire.OpCreateContainer, &wire.CreateRequest{Path: path, Data: data, ACL: acl, Flags: mode}, &r)
	case wire.ModePersistentWithTTL, wire.ModePersistentSequentialWithTTL:
		err = c.Call(wire.OpCreateTTL, &wire.CreateTTLRequest{Path: path, Data: data, ACL: acl, Flags: mode, TTL: ttl}, &r)
	default:
		err = c.Call(wire.OpCreate2, &wire.CreateRequest{Path: path, Data: data, ACL: acl, Flags: mode}, &r)
	}
	return r.Path, err
}

// Delete is delete.
func (c *Conn) Delete(path string, version int32) error {
	return c.Call(wire.OpDelete, &wire.PathVersionRequest{Path: path, Version: version}, nil)
}

// GetACL is getACL.
func (c *Conn) GetACL(path string) ([]wire.ACL, wire.Stat, error) {
	var r wire.GetACLResponse
	err := c.Call(wire.OpGetACL, &wire.PathRequest{Path: path}, &r)
	return r.ACL, r.Stat, err
}

// SetACL is setACL.
func (c *Conn) SetACL(path string, acl []wire.ACL, version int32) (wire.Stat, error) {
	var r wire.StatResponse
	err := c.Call(wire.OpSetACL, &wire.SetACLRequest{Path: path, ACL: acl, Version: version}, &r)
	return r.Stat, err
}

// Check is a multi of one check op: nil when path's data version is
// version at the moment the multi commits, an error otherwise (BadVersion
// when it is not). Being a write, it goes through the leader and its
// quorum.
func (c *Conn) Check(path string, version int32) error {
	var r wire.MultiResponse
	if err := c.Call(wire.OpMulti, &wire.MultiRequest{Ops: []wire.MultiOp{{Type: wire.OpCheck, Path: path, Version: version}}}, &r); err != nil {
		return err
	}
	for _, res := range r.Results {
		if res.Type == wire.OpError && res.Err != wire.ErrOK {
			return res.Err
		}
	}
	return nil
}

// Sync is sync.
func (c *Conn) Sync(path string) error {
	var r wire.PathRequest
	return c.Call(wire.OpSync, &wire.PathRequest{Path: path}, &r)
}

// AllChildrenNumber is getAllChildrenNumber: how many znodes are below
// path.
func (c *Conn) AllChildrenNumber(path string) (int32, error) {
	var r wire.GetAllChildrenNumberResponse
	err := c.Call(wire.OpGetAllChildrenNumber, &wire.PathRequest{Path: path}, &r)
	return r.TotalNumber, err
}

// Ephemerals is getEphemerals: the session's ephemeral znodes whose paths
// start with prefix.
func (c *Conn) Ephemerals(prefix string) ([]string, error) {
	var r wire.StringsResponse
	err := c.Call(wire.OpGetEphemerals, &wire.PathRequest{Path: prefix}, &r)
	return r.Strings, err
}

// WhoAmI is whoAmI: the identities the server gave the session.
func (c *Conn) WhoAmI() ([]wire.ClientInfo, error) {
	var r wire.WhoAmIResponse
	err := c.Call(wire.OpWhoAmI, nil, &r)
	return r.ClientInfo, err
}

// AddWatch sets a persistent watch, recursive or not, on path.
func (c *Conn) AddWatch(path string, mode wire.AddWatchMode) error {
	var r wire.ErrorResponse
	if err := c.Call(wire.OpAddWatch, &wire.AddWatchRequest{Path: path, Mode: mode}, &r); err != nil {
		return err
	}
	if r.Err != wire.ErrOK {
		return r.Err
	}
	return nil
}

// RemoveWatches removes the session's watches of type kind on path, as
// a Java client's removeAllWatches does: ErrNoWatcher when the session
// set none there; with local, only this side forgets them and the server
// keeps firing them. Each kind removed gives an event of its own.
func (c *Conn) RemoveWatches(path string, kind wire.WatcherType, local bool) error {
	kinds := map[wire.WatcherType][]int{
		wire.WatcherChildren: {watchChild},
		wire.WatcherData:     {watchData, watchExist},
		wire.WatcherAny:      {watchData, watchExist, watchChild, watchPersistent, watchRecursive},
	}[kind]
	c.mu.Lock()
	var have []int
	for _, k := range kinds {
		if c.watches[k][path] {
			have = append(have, k)
		}
	}
	c.mu.Unlock()
	if len(have) == 0 {
		return wire.ErrNoWatcher
	}
	if !local {
		if err := c.Call(wire.OpRemoveWatches, &wire.WatchesRequest{Path: path, Type: kind}, nil); err != nil {
			return err
		}
	}
	removed := map[wire.EventType]bool{}
	c.mu.Lock()
	for _, k := range have {
		delete(c.watches[k], path)
		switch k {
		case watchChild:
			removed[wire.EventChildWatchRemoved] = true
		case watchData, watchExist:
			removed[wire.EventDataWatchRemoved] = true
		default:
			removed[wire.EventPersistentWatchRemoved] = true
		}
	}
	c.mu.Unlock()
	for _, t := range []wire.EventType{wire.EventDataWatchRemoved, wire.EventChildWatchRemoved, wire.EventPersistentWatchRemoved} {
		if removed[t] {
			c.onEvent(Event{Type: t, State: wire.StateSyncConnected, Path: path})
		}
	}
	return nil
}

// Reconfig is reconfig; nil leaves a part out. It returns the new
// configuration's data and Stat.
func (c *Conn) Reconfig(joining, leaving, members *string, fromConfig int64) ([]byte, wire.Stat, error) {
	var r wire.GetDataResponse
	err := c.Call(wire.OpReconfig, &wire.ReconfigRequest{JoiningServers: joining, LeavingServers: leaving,
		NewMembers: members, CurConfigID: fromConfig}, &r)
	return r.Data, r.Stat, err
}
