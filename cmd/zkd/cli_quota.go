package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"zkd/wire"
	"zkd/ztree"
)

// Quotas live under /zookeeper/quota: for a quota on P, P's path below it
// holds zookeeper_limits (the limits) and zookeeper_stats (what the server
// counts).
const (
	quotaRoot  = "/zookeeper/quota"
	quotaLimit = "zookeeper_limits"
	quotaStats = "zookeeper_stats"
)

// openACL is world:anyone with every permission, as zkCli.sh gives the
// quota znodes.
var openACL = []wire.ACL{{Perms: wire.PermAll, ID: wire.Id{Scheme: "world", ID: "anyone"}}}

// quotaFlags are setquota's and delquota's options, of which one may be
// given, and the StatsTrack key each sets.
var quotaFlags = []struct{ flag, key, what string }{
	{"-n", "count", "num soft quota"},
	{"-b", "bytes", "bytes soft quota"},
	{"-N", "countHardLimit", "num hard quota"},
	{"-B", "byteHardLimit", "bytes hard quota"},
}

// quota runs listquota, setquota and delquota as zkCli.sh does, through
// the quota znodes. The caller holds mu.
func (sh *shell) quota(cmd string, opts map[string]string, path string) int {
	conn := sh.conn.Load()
	limitPath := quotaRoot + path + "/" + quotaLimit
	statPath := quotaRoot + path + "/" + quotaStats
	// The options form a group: one at most, and setquota needs one.
	flag := ""
	for _, q := range quotaFlags {
		if _, ok := opts[q.flag]; !ok {
			continue
		}
		if flag != "" {
			fmt.Fprintf(sh.err, "org.apache.commons.cli.AlreadySelectedException: The option '%s' was specified but an option from this group has already been selected: '%s'\n", q.flag[1:], flag[1:])
			return 1
		}
		flag = q.flag
	}
	var err error
	switch cmd {
	case "listquota":
		fmt.Fprintln(sh.err, "absolute path is "+limitPath)
		var limits, stats []byte
		if limits, _, err = conn.Get(limitPath, false); err == nil {
			stats, _, err = conn.Get(statPath, false)
		}
		if errors.Is(err, wire.ErrNoNode) {
			fmt.Fprintf(sh.err, "quota for %s does not exist.\n", path)
			return 0
		}
		if err == nil {
			fmt.Fprintf(sh.out, "Output quota for %s %s\n", path, ztree.ParseStatsTrack(string(limits)))
			fmt.Fprintf(sh.out, "Output stat for %s %s\n", path, ztree.ParseStatsTrack(string(stats)))
		}
	case "setquota":
		if strings.HasPrefix(path, quotaRoot) {
			fmt.Fprintln(sh.err, "cannot set a quota under the path: "+quotaRoot)
			return 0
		}
		if flag == "" {
			var all []string
			for _, q := range quotaFlags {
				all = append(all, q.flag+" "+q.what)
			}
			fmt.Fprintf(sh.err, "org.apache.commons.cli.MissingOptionException: Missing required option: [%s]\n", strings.Join(all, ", "))
			return 1
		}
		want := ztree.StatsTrack{"count": -1, "bytes": -1, "countHardLimit": -1, "byteHardLimit": -1}
		for _, q := range quotaFlags {
			if q.flag != flag {
				continue
			}
			n, perr := strconv.ParseInt(opts[flag], 10, 64)
			switch {
			case perr != nil || (strings.HasPrefix(q.key, "count") && n != int64(int32(n))):
				fmt.Fprintln(sh.err, "NumberFormatException happens when parsing the option value")
				return 0
			case strings.HasPrefix(q.key, "count") && n <= 0:
				fmt.Fprintln(sh.err, "the num quota must be greater than zero")
				return 0
			case n < 0:
				fmt.Fprintln(sh.err, "the bytes quota must be greater than or equal to zero")
				return 0
			}
			want[q.key] = n
		}
		var msg string
		if msg, err = sh.setQuota(path, want); msg != "" {
			fmt.Fprintln(sh.err, msg)
			return 1
		}
	case "delquota":
		var ok bool
		if _, ok, err = conn.Exists(limitPath, false); err == nil && !ok {
			fmt.Fprintln(sh.out, "Quota does not exist for "+path)
			return 0
		}
		if err != nil {
			break
		}
		if flag == "" {
			err = sh.dropQuota(path)
			break
		}
		var data []byte
		if data, _, err = conn.Get(limitPath, false); err != nil {
			break
		}
		limits := ztree.ParseStatsTrack(string(data))
		for _, q := range quotaFlags {
			if q.flag == flag {
				limits[q.key] = -1
			}
		}
		_, err = conn.Set(limitPath, []byte(limits.String()), -1)
	}
	if errors.Is(err, wire.ErrNoNode) && cmd == "delquota" {
		fmt.Fprintf(sh.err, "quota for %s does not exist.\n", path)
		return 0
	}
	if err != nil {
		fmt.Fprintln(sh.err, cliError(err, path))
		return 1
	}
	return 0
}

// setQuota puts the limits in want (those not -1) on path, creating the
// quota's znodes if it has none, and warns when the znodes under path
// already exceed them. msg is set when the quota may not be set: path is
// missing, or a quota above or below it exists.
func (sh *shell) setQuota(path string, want ztree.StatsTrack) (msg string, err error) {
	conn := sh.conn.Load()
	if msg := pathError(path); msg != "" {
		return msg, nil
	}
	_, ok, err := conn.Exists(path, false)
	if err != nil || !ok {
		if errors.Is(err, wire.ErrNoNode) || (err == nil && !ok) {
			return path + " does not exist.", nil
		}
		return "", err
	}
	if msg := pathError(quotaRoot + path); msg != "" {
		return msg, nil
	}
	// No quota below path: a quota znode anywhere in path's part of
	// the quota tree, other than path's own.
	below, err := sh.subtree(quotaRoot + path)
	if err != nil && !errors.Is(err, wire.ErrNoNode) {
		return "", err
	}
	for _, p := range below {
		if p != quotaRoot+path && strings.HasSuffix(p, "/"+quotaLimit) {
			owner := strings.TrimSuffix(strings.TrimPrefix(p, quotaRoot), "/"+quotaLimit)
			if owner != path {
				return fmt.Sprintf("%s has a child %s which has a quota", path, owner), nil
			}
		}
	}
	// No quota above it.
	parts := strings.Split(path, "/")
	for i := 1; i < len(parts)-1; i++ {
		above := quotaRoot + strings.Join(parts[:i+1], "/")
		kids, _, err := conn.Children(above, false)
		if errors.Is(err, wire.ErrNoNode) || len(kids) == 0 {
			break
		}
		if err != nil {
			return "", err
		}
		for _, k := range kids {
			if k == quotaLimit {
				return fmt.Sprintf("%s has a parent %s which has a quota", path, strings.TrimPrefix(above, quotaRoot)), nil
			}
		}
	}
	node := quotaRoot
	for _, p := range parts[1:] {
		node += "/" + p
		if _, err := conn.Create(node, nil, openACL, wire.ModePersistent, 0); err != nil && !errors.Is(err, wire.ErrNodeExists) {
			return "", err
		}
	}
	limitPath, statPath := node+"/"+quotaLimit, node+"/"+quotaStats
	_, ok, err = conn.Exists(limitPath, false)
	if err != nil {
		return "", err
	}
	limits := want
	if !ok {
		if _, err = conn.Create(limitPath, []byte(want.String()), openACL, wire.ModePersistent, 0); err != nil {
			return "", err
		}
		// The server counts what is under path once the stats
		// znode exists.
		if _, err = conn.Create(statPath, []byte(ztree.StatsTrack{"count": 0, "bytes": 0}.String()), openACL, wire.ModePersistent, 0); err != nil {
			return "", err
		}
	} else {
		data, _, err := conn.Get(limitPath, false)
		if err != nil {
			return "", err
		}
		limits = ztree.ParseStatsTrack(string(data))
		for k, v := range want {
			if v > -1 {
				limits[k] = v
			}
		}
	}
	data, _, err := conn.Get(statPath, false)
	if err != nil {
		return "", err
	}
	stats := ztree.ParseStatsTrack(string(data))
	over := func(limit, hard string, have int64) bool {
		return (limits.Get(limit) > -1 && limits.Get(limit) < have) || (limits.Get(hard) > -1 && limits.Get(hard) < have)
	}
	if over("count", "countHardLimit", stats.Get("count")) {
		fmt.Fprintf(sh.out, "[Warning]: the count quota you create is less than the existing count:%d\n", stats.Get("count"))
	}
	if over("bytes", "byteHardLimit", stats.Get("bytes")) {
		fmt.Fprintf(sh.out, "[Warning]: the bytes quota you create is less than the existing bytes:%d\n", stats.Get("bytes"))
	}
	if ok {
		_, err = conn.Set(limitPath, []byte(limits.String()), -1)
	}
	return "", err
}

// dropQuota removes path's quota: its two znodes, then each parent in
// the quota tree left without children.
func (sh *shell) dropQuota(path string) error {
	conn := sh.conn.Load()
	node := quotaRoot + path
	kids, _, err := conn.Children(node, false)
	if err != nil {
		return err
	}
	for _, k := range kids {
		if err := conn.Delete(node+"/"+k, -1); err != nil {
			return err
		}
	}
	for node != quotaRoot {
		kids, _, err := conn.Children(node, false)
		if err != nil {
			return err
		}
		if len(kids) > 0 {
			return nil
		}
		if err := conn.Delete(node, -1); err != nil {
			return err
		}
		node = node[:strings.LastIndexByte(node, '/')]
	}
	return nil
}
