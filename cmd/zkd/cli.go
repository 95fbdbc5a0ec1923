package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-zookeeper/zk"

	"zkd/internal/java"
)

const cliUsage = `ZooKeeper -server host:port cmd args
	addauth scheme auth
	close 
	create [-s] [-e] [-c] [-t ttl] path [data] [acl]
	delete [-v version] path
	deleteall path
	get [-s] path
	getAcl [-s] path
	getAllChildrenNumber path
	history 
	ls [-s] [-R] path
	quit 
	set [-s] [-v version] path data
	setAcl [-s] [-v version] path acl
	stat path
	sync path
	version 
`

// cliCmd is zkd cli: a shell with zkCli.sh's commands and output, so that
// scripts written for zkCli.sh keep working. With a command after the
// options it runs that one and exits (0, 1 when the server refused it,
// 127 for an unknown command), as zkCli.sh does; without one it reads
// commands from its input, one a line, with a prompt on a terminal.
func cliCmd(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	server, timeout := "localhost:2181", 30*time.Second
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		switch {
		case (args[0] == "-server" || args[0] == "-timeout") && len(args) > 1:
			if args[0] == "-server" {
				server = args[1]
			} else {
				ms, err := strconv.Atoi(args[1])
				if err != nil || ms <= 0 {
					fmt.Fprintf(stderr, "zkd cli: -timeout %q is not a number of milliseconds\n", args[1])
					return 2
				}
				timeout = time.Duration(ms) * time.Millisecond
			}
			args = args[2:]
		case args[0] == "-h" || args[0] == "--help":
			fmt.Fprint(stdout, cliUsage)
			return 0
		default:
			fmt.Fprintf(stderr, "zkd cli: unknown option %s\n%s", args[0], cliUsage)
			return 2
		}
	}
	conn, events, err := zk.Connect(strings.Split(server, ","), timeout, zk.WithLogger(quietZK{}))
	if err != nil {
		fmt.Fprintf(stderr, "zkd cli: %v\n", err)
		return 1
	}
	deadline := time.After(timeout)
	for connected := false; !connected; {
		select {
		case ev := <-events:
			connected = ev.State == zk.StateHasSession
		case <-deadline:
			fmt.Fprintf(stderr, "zkd cli: no session with %s within %v\n", server, timeout)
			return 1
		}
	}
	sh := &shell{conn: conn, out: stdout, server: server}
	if len(args) > 0 {
		// zkCli.sh exits without closing its session, so what it
		// created ephemeral lives until the session expires; scripts
		// count on that, and zkd cli does the same.
		return sh.run(args)
	}
	defer conn.Close()
	prompt := isTerminal(stdin)
	sc := bufio.NewScanner(stdin)
	code := 0
	for {
		if prompt {
			fmt.Fprintf(stdout, "[zk: %s(%s) %d] ", server, conn.State(), len(sh.history))
		}
		if !sc.Scan() {
			break
		}
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		f := strings.Fields(line)
		if f[0] == "quit" || f[0] == "close" {
			break
		}
		sh.history = append(sh.history, line)
		code = sh.run(f)
	}
	return code
}

type quietZK struct{}

func (quietZK) Printf(string, ...any) {}

func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

type shell struct {
	conn    *zk.Conn
	out     io.Writer
	server  string
	history []string
}

// cliZone is the time zone stat prints times in: the local one, as a
// JVM's default.
var cliZone = time.Local

// run runs one command and returns its exit code.
func (sh *shell) run(f []string) int {
	cmd, opts, rest := f[0], map[string]string{}, []string{}
	valued := map[string]bool{"-v": true, "-t": true}
	for i := 1; i < len(f); i++ {
		if strings.HasPrefix(f[i], "-") && len(f[i]) == 2 && len(rest) == 0 {
			if valued[f[i]] && i+1 < len(f) {
				opts[f[i]] = f[i+1]
				i++
			} else {
				opts[f[i]] = ""
			}
			continue
		}
		rest = append(rest, f[i])
	}
	has := func(o string) bool { _, ok := opts[o]; return ok }
	version := int32(-1)
	if v, ok := opts["-v"]; ok {
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil {
			fmt.Fprintf(sh.out, "version %q is not a number\n", v)
			return 1
		}
		version = int32(n)
	}
	need := func(n int) bool {
		if len(rest) < n {
			fmt.Fprint(sh.out, cliUsage)
			return false
		}
		return true
	}
	var err error
	switch cmd {
	case "ls":
		if !need(1) {
			return 1
		}
		if has("-R") {
			var tree []string
			if tree, err = sh.subtree(rest[0]); err == nil {
				for _, p := range tree {
					fmt.Fprintln(sh.out, p)
				}
			}
			break
		}
		var kids []string
		var st *zk.Stat
		if kids, st, err = sh.conn.Children(rest[0]); err == nil {
			sort.Strings(kids)
			fmt.Fprintf(sh.out, "[%s]\n", strings.Join(kids, ", "))
			if has("-s") {
				sh.printStat(st)
			}
		}
	case "get":
		if !need(1) {
			return 1
		}
		var data []byte
		var st *zk.Stat
		if data, st, err = sh.conn.Get(rest[0]); err == nil {
			if data == nil {
				fmt.Fprintln(sh.out, "null")
			} else {
				fmt.Fprintln(sh.out, string(data))
			}
			if has("-s") {
				sh.printStat(st)
			}
		}
	case "stat":
		if !need(1) {
			return 1
		}
		var ok bool
		var st *zk.Stat
		if ok, st, err = sh.conn.Exists(rest[0]); err == nil {
			if !ok {
				err = zk.ErrNoNode
			} else {
				sh.printStat(st)
			}
		}
	case "set":
		if !need(2) {
			return 1
		}
		var st *zk.Stat
		if st, err = sh.conn.Set(rest[0], []byte(rest[1]), version); err == nil && has("-s") {
			sh.printStat(st)
		}
	case "create":
		if !need(1) {
			return 1
		}
		var data []byte
		if len(rest) > 1 {
			data = []byte(rest[1])
		}
		acl := zk.WorldACL(zk.PermAll)
		if len(rest) > 2 {
			if acl, err = parseACL(rest[2]); err != nil {
				fmt.Fprintln(sh.out, err)
				return 1
			}
		}
		var flags int32
		if has("-s") {
			flags |= zk.FlagSequence
		}
		if has("-e") {
			flags |= zk.FlagEphemeral
		}
		var created string
		switch {
		case has("-c"):
			created, err = sh.conn.CreateContainer(rest[0], data, zk.FlagContainer, acl)
		case has("-t"):
			ttl, perr := strconv.ParseInt(opts["-t"], 10, 64)
			if perr != nil {
				fmt.Fprintf(sh.out, "ttl %q is not a number\n", opts["-t"])
				return 1
			}
			created, err = sh.conn.CreateTTL(rest[0], data, flags|zk.FlagTTL, acl, time.Duration(ttl)*time.Millisecond)
		default:
			created, err = sh.conn.Create(rest[0], data, flags, acl)
		}
		if err == nil {
			fmt.Fprintf(sh.out, "Created %s\n", created)
		}
	case "delete":
		if !need(1) {
			return 1
		}
		err = sh.conn.Delete(rest[0], version)
	case "deleteall":
		if !need(1) {
			return 1
		}
		var paths []string
		if paths, err = sh.subtree(rest[0]); err == nil {
			for i := len(paths) - 1; i >= 0 && err == nil; i-- {
				if err = sh.conn.Delete(paths[i], -1); errors.Is(err, zk.ErrNoNode) {
					err = nil
				}
			}
		}
	case "getAcl":
		if !need(1) {
			return 1
		}
		var acl []zk.ACL
		var st *zk.Stat
		if acl, st, err = sh.conn.GetACL(rest[0]); err == nil {
			for _, a := range acl {
				fmt.Fprintf(sh.out, "'%s,'%s\n: %s\n", a.Scheme, a.ID, permString(a.Perms))
			}
			if has("-s") {
				sh.printStat(st)
			}
		}
	case "setAcl":
		if !need(2) {
			return 1
		}
		acl, perr := parseACL(rest[1])
		if perr != nil {
			fmt.Fprintln(sh.out, perr)
			return 1
		}
		var st *zk.Stat
		if st, err = sh.conn.SetACL(rest[0], acl, version); err == nil && has("-s") {
			sh.printStat(st)
		}
	case "sync":
		if !need(1) {
			return 1
		}
		if _, err = sh.conn.Sync(rest[0]); err == nil {
			fmt.Fprintln(sh.out, "Sync is OK")
		}
	case "getAllChildrenNumber":
		if !need(1) {
			return 1
		}
		var tree []string
		if tree, err = sh.subtree(rest[0]); err == nil {
			fmt.Fprintln(sh.out, len(tree)-1) // the path itself is not counted
		}
	case "addauth":
		if !need(2) {
			return 1
		}
		err = sh.conn.AddAuth(rest[0], []byte(rest[1]))
	case "history":
		for i, h := range sh.history {
			fmt.Fprintf(sh.out, "%d - %s\n", i, h)
		}
	case "version":
		fmt.Fprintln(sh.out, "ZooKeeper CLI version: "+versionLine())
	case "help":
		fmt.Fprint(sh.out, cliUsage)
	default:
		fmt.Fprint(sh.out, cliUsage)
		fmt.Fprintf(sh.out, "Command not found: Command not found %s\n", cmd)
		return 127
	}
	if err != nil {
		path := ""
		if len(rest) > 0 {
			path = rest[0]
		}
		fmt.Fprintln(sh.out, cliError(err, path))
		return 1
	}
	return 0
}

// subtree lists path and every znode under it breadth first, each
// parent's children in the order the server gives them, as zkCli.sh's
// ls -R does (ZKUtil.listSubTreeBFS).
func (sh *shell) subtree(path string) ([]string, error) {
	tree := []string{path}
	for i := 0; i < len(tree); i++ {
		kids, _, err := sh.conn.Children(tree[i])
		if errors.Is(err, zk.ErrNoNode) && i > 0 {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, err
		}
		for _, k := range kids {
			if tree[i] == "/" {
				tree = append(tree, "/"+k)
			} else {
				tree = append(tree, tree[i]+"/"+k)
			}
		}
	}
	return tree, nil
}

// printStat prints a Stat as zkCli.sh does.
func (sh *shell) printStat(st *zk.Stat) {
	fmt.Fprintf(sh.out, "cZxid = 0x%x\nctime = %s\nmZxid = 0x%x\nmtime = %s\npZxid = 0x%x\n",
		uint64(st.Czxid), java.Date(time.UnixMilli(st.Ctime).In(cliZone)),
		uint64(st.Mzxid), java.Date(time.UnixMilli(st.Mtime).In(cliZone)), uint64(st.Pzxid))
	fmt.Fprintf(sh.out, "cversion = %d\ndataVersion = %d\naclVersion = %d\nephemeralOwner = 0x%x\ndataLength = %d\nnumChildren = %d\n",
		st.Cversion, st.Version, st.Aversion, uint64(st.EphemeralOwner), st.DataLength, st.NumChildren)
}

// cliError is zkCli.sh's message for a refused command.
func cliError(err error, path string) string {
	switch {
	case errors.Is(err, zk.ErrNoNode):
		return "Node does not exist: " + path
	case errors.Is(err, zk.ErrNodeExists):
		return "Node already exists: " + path
	case errors.Is(err, zk.ErrNotEmpty):
		return "Node not empty: " + path
	case errors.Is(err, zk.ErrBadVersion):
		return "version No is not valid : " + path
	case errors.Is(err, zk.ErrNoAuth):
		return "Insufficient permission : " + path
	case errors.Is(err, zk.ErrInvalidACL):
		return "Acl is not valid : " + path
	}
	return err.Error()
}

// permString is zkCli.sh's form of a permission set: its letters in the
// order c, d, r, w, a.
func permString(p int32) string {
	var b strings.Builder
	for _, x := range []struct {
		bit    int32
		letter byte
	}{{zk.PermCreate, 'c'}, {zk.PermDelete, 'd'}, {zk.PermRead, 'r'}, {zk.PermWrite, 'w'}, {zk.PermAdmin, 'a'}} {
		if p&x.bit != 0 {
			b.WriteByte(x.letter)
		}
	}
	return b.String()
}

// parseACL reads zkCli.sh's ACL form: scheme:id:perms, comma-separated;
// the id may hold colons (digest:user:hash:cdrwa).
func parseACL(s string) ([]zk.ACL, error) {
	var out []zk.ACL
	for _, part := range strings.Split(s, ",") {
		first := strings.IndexByte(part, ':')
		last := strings.LastIndexByte(part, ':')
		if first < 0 || last == first {
			return nil, fmt.Errorf("%s does not have the form scheme:id:perm", part)
		}
		var perms int32
		for _, c := range part[last+1:] {
			switch c {
			case 'c':
				perms |= zk.PermCreate
			case 'd':
				perms |= zk.PermDelete
			case 'r':
				perms |= zk.PermRead
			case 'w':
				perms |= zk.PermWrite
			case 'a':
				perms |= zk.PermAdmin
			default:
				return nil, fmt.Errorf("unknown perm type: %c", c)
			}
		}
		out = append(out, zk.ACL{Scheme: part[:first], ID: part[first+1 : last], Perms: perms})
	}
	return out, nil
}
