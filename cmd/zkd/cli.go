package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"golang.org/x/term"

	"zkd/internal/java"
	"zkd/internal/zkclient"
	"zkd/wire"
)

const cliUsage = `ZooKeeper -server host:port cmd args
	addWatch [-m mode] path # optional mode is one of [PERSISTENT, PERSISTENT_RECURSIVE] - default is PERSISTENT_RECURSIVE
	addauth scheme auth
	close 
	config [-c] [-w] [-s]
	connect host:port
	create [-s] [-e] [-c] [-t ttl] path [data] [acl]
	delete [-v version] path
	deleteall path [-b batch size]
	delquota [-n|-b|-N|-B] path
	get [-s] [-w] path
	getAcl [-s] path
	getAllChildrenNumber path
	getEphemerals path
	history 
	listquota path
	ls [-s] [-w] [-R] path
	printwatches on|off
	quit 
	reconfig [-s] [-v version] [[-file path] | [-members serverID=host:port1:port2;port3[,...]*]] | [-add serverId=host:port1:port2;port3[,...]]* [-remove serverId[,...]*]
	redo cmdno
	removewatches path [-c|-d|-a] [-l]
	set [-s] [-v version] path data
	setAcl [-s] [-v version] [-R] path acl
	setquota -n|-b|-N|-B val path
	stat [-w] path
	sync path
	version 
	whoami 
`

// cliCommands are the commands zkd cli knows, for tab completion.
var cliCommands = []string{"addWatch", "addauth", "close", "config", "connect", "create", "delete",
	"deleteall", "delquota", "get", "getAcl", "getAllChildrenNumber", "getEphemerals", "history",
	"listquota", "ls", "printwatches", "quit", "reconfig", "redo", "removewatches", "set", "setAcl",
	"setquota", "stat", "sync", "version", "whoami"}

// cliCmd is zkd cli: a shell with zkCli.sh's commands and output, so that
// scripts written for zkCli.sh keep working. With a command after the
// options it runs that one and exits (0, 1 when the command failed, 127
// for an unknown command), as zkCli.sh does; without one it reads commands
// from its input, one a line: on a terminal with line editing, history
// (the arrow keys) and tab completion of commands and znode paths.
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
	sh := &shell{server: server, timeout: timeout}
	sh.printWatches.Store(true)
	sh.out, sh.err = sh.streams(stdout, stderr)
	fmt.Fprintf(stdout, "Connecting to %s\n", server)
	if len(args) > 0 {
		if err := sh.connect(server); err != nil {
			fmt.Fprintf(stderr, "zkd cli: %v\n", err)
			return 1
		}
		// zkCli.sh exits without closing its session, so what it
		// created ephemeral lives until the session expires; scripts
		// count on that, and zkd cli does the same.
		return sh.run(args)
	}
	fmt.Fprintln(stdout, "Welcome to ZooKeeper!")
	if err := sh.connect(server); err != nil {
		fmt.Fprintf(stderr, "zkd cli: %v\n", err)
		return 1
	}
	defer func() {
		// At the end of the input zkCli.sh exits without a word; zkd
		// cli closes the session too, quietly.
		sh.mute.Store(true)
		if conn := sh.conn.Swap(nil); conn != nil {
			conn.Close()
		}
	}()
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		if code, ok := sh.terminal(f, stdout); ok {
			return code
		}
	}
	sc := bufio.NewScanner(stdin)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if sh.execute(sc.Text()) {
			break
		}
	}
	return sh.code
}

// terminal runs the shell on a terminal: raw mode, the line editor of
// golang.org/x/term with its history, and tab completion. ok is false
// when the terminal cannot be put in raw mode; the caller then reads
// lines as from a pipe.
func (sh *shell) terminal(in *os.File, out io.Writer) (code int, ok bool) {
	fd := int(in.Fd())
	old, err := term.MakeRaw(fd)
	if err != nil {
		return 0, false
	}
	defer term.Restore(fd, old)
	t := term.NewTerminal(struct {
		io.Reader
		io.Writer
	}{in, out}, "")
	if w, h, err := term.GetSize(fd); err == nil {
		t.SetSize(w, h)
	}
	t.AutoCompleteCallback = func(line string, pos int, key rune) (string, int, bool) {
		if key != '\t' {
			return "", 0, false
		}
		return sh.complete(t, line, pos)
	}
	sh.redirect(t, t)
	for {
		t.SetPrompt(sh.prompt())
		line, err := t.ReadLine()
		if err != nil { // end of input, ^D or ^C
			break
		}
		if sh.execute(line) {
			break
		}
	}
	return sh.code, true
}

// complete is tab completion as zkCli.sh's: the first word completes to a
// command, a word that starts with / to the znodes beside it. One match
// is filled in; several are filled in as far as they agree, and listed
// when they agree no further.
func (sh *shell) complete(t *term.Terminal, line string, pos int) (string, int, bool) {
	head := line[:pos]
	start := strings.LastIndexAny(head, " \t") + 1
	token := head[start:]
	var cands []string
	switch {
	case strings.HasPrefix(token, "/"):
		conn := sh.conn.Load()
		if conn == nil {
			break
		}
		cut := strings.LastIndexByte(token, '/') + 1
		dir, prefix := token[:cut-1], token[cut:]
		if dir == "" {
			dir = "/"
		}
		kids, _, err := conn.Children(dir, false)
		if err != nil {
			break
		}
		for _, k := range kids {
			if strings.HasPrefix(k, prefix) {
				cands = append(cands, token[:cut]+k)
			}
		}
	case strings.TrimSpace(head[:start]) == "":
		for _, c := range cliCommands {
			if strings.HasPrefix(c, token) {
				cands = append(cands, c)
			}
		}
	}
	sort.Strings(cands)
	fill := func(s string) (string, int, bool) {
		return head[:start] + s + line[pos:], start + len(s), true
	}
	switch {
	case len(cands) == 0:
		return line, pos, true
	case len(cands) == 1:
		return fill(cands[0] + " ")
	}
	common := cands[0]
	for _, c := range cands[1:] {
		for !strings.HasPrefix(c, common) {
			common = common[:len(common)-1]
		}
	}
	if len(common) > len(token) {
		return fill(common)
	}
	fmt.Fprintln(t, strings.Join(cands, "  "))
	return line, pos, true
}

// shell is zkd cli's state. Commands run one at a time; watch events
// are printed as they come, between the lines a command prints.
type shell struct {
	conn         atomic.Pointer[zkclient.Conn] // nil after close
	mute         atomic.Bool                   // events not printed: the session is closing quietly
	out, err     io.Writer                     // write a line at a time
	server       string
	timeout      time.Duration
	history      []string
	printWatches atomic.Bool
	code         int // the last command's exit code

	outMu        sync.Mutex // orders writes to stdout and stderr
	stdout, stde io.Writer
}

// streams returns the shell's output and error streams, which write
// through to stdout and stderr one write at a time.
func (sh *shell) streams(stdout, stderr io.Writer) (io.Writer, io.Writer) {
	sh.stdout, sh.stde = stdout, stderr
	return stream{sh, false}, stream{sh, true}
}

// redirect sends both streams to new writers.
func (sh *shell) redirect(stdout, stderr io.Writer) {
	sh.outMu.Lock()
	defer sh.outMu.Unlock()
	sh.stdout, sh.stde = stdout, stderr
}

type stream struct {
	sh    *shell
	isErr bool
}

func (s stream) Write(p []byte) (int, error) {
	s.sh.outMu.Lock()
	defer s.sh.outMu.Unlock()
	if s.isErr {
		return s.sh.stde.Write(p)
	}
	return s.sh.stdout.Write(p)
}

// cliZone is the time zone stat prints times in: the local one, as a
// JVM's default.
var cliZone = time.Local

// connect opens a session with server and waits for it. Its events are
// printed as zkCli.sh's watcher prints them.
func (sh *shell) connect(server string) error {
	var self atomic.Pointer[zkclient.Conn] // unknown until Dial returns
	conn, err := zkclient.Dial(strings.Split(server, ","), sh.timeout, func(ev zkclient.Event) {
		// Once the shell has moved to another session, the old one's
		// events are not printed but for its closing.
		mine := self.Load()
		if mine == nil || sh.conn.Load() == mine || ev.State == zkclient.StateClosed {
			sh.watched(ev)
		}
	})
	if err != nil {
		return err
	}
	self.Store(conn)
	sh.conn.Store(conn)
	sh.server = server
	return nil
}

// disconnect closes the session, if one is open; zkCli.sh's watcher
// prints that it closed.
func (sh *shell) disconnect() {
	if conn := sh.conn.Swap(nil); conn != nil {
		conn.Close()
	}
}

// watched prints an event as zkCli.sh's watcher does, when printwatches
// is on.
func (sh *shell) watched(ev zkclient.Event) {
	if sh.mute.Load() || !sh.printWatches.Load() {
		return
	}
	state := ev.State.String()
	switch ev.State {
	case zkclient.StateClosed:
		state = "Closed"
	case wire.StateNoSyncConnected:
		return
	}
	path := ev.Path
	if ev.Type == wire.EventNone {
		path = "null"
	}
	fmt.Fprintf(sh.out, "\nWATCHER::\n\nWatchedEvent state:%s type:%s path:%s\n", state, ev.Type, path)
}

// prompt is zkCli.sh's: the server, the session's state and the number
// of the next command.
func (sh *shell) prompt() string {
	state := "CLOSED"
	if conn := sh.conn.Load(); conn != nil {
		switch conn.State() {
		case wire.StateSyncConnected:
			state = "CONNECTED"
		case wire.StateConnectedReadOnly:
			state = "CONNECTEDREADONLY"
		case wire.StateAuthFailed:
			state = "AUTH_FAILED"
		case wire.StateExpired, zkclient.StateClosed:
			state = "CLOSED"
		default:
			state = "CONNECTING"
		}
	}
	return fmt.Sprintf("[zk: %s(%s) %d] ", sh.server, state, len(sh.history))
}

// execute runs one line of input and reports whether it was quit.
func (sh *shell) execute(line string) (quit bool) {
	f := splitCommand(line)
	if len(f) == 0 {
		return false
	}
	sh.history = append(sh.history, line)
	if f[0] == "quit" {
		sh.disconnect()
		return true
	}
	sh.code = sh.run(f)
	return false
}

var (
	cliArg    = regexp.MustCompile(`\s*([^"'\s]\S*|"[^"]*"|'[^']*')\s*`)
	cliQuoted = regexp.MustCompile(`^(?:"[^"]*"|'[^']*')$`)
)

// splitCommand splits a line as zkCli.sh does: at white space, except
// inside a pair of quotes, which are dropped.
func splitCommand(line string) []string {
	var f []string
	for _, m := range cliArg.FindAllStringSubmatch(line, -1) {
		a := m[1]
		if cliQuoted.MatchString(a) {
			a = a[1 : len(a)-1]
		}
		f = append(f, a)
	}
	return f
}

// cliValued are each command's options that take a value.
var cliValued = map[string]string{
	"create": "t", "delete": "v", "set": "v", "setAcl": "v", "deleteall": "b",
	"setquota": "nbNB", "addWatch": "m", "reconfig": "v",
}

// cliLong are the options longer than a letter, all of which take a value.
var cliLong = map[string][]string{"reconfig": {"-add", "-remove", "-members", "-file"}}

// run runs one command and returns its exit code: 0, 1 when it failed,
// 127 when there is no such command.
func (sh *shell) run(f []string) int {
	cmd, opts, rest := f[0], map[string]string{}, []string{}
	for i := 1; i < len(f); i++ {
		a := f[i]
		if slices.Contains(cliLong[cmd], a) && i+1 < len(f) {
			opts[a] = f[i+1]
			i++
			continue
		}
		if len(a) == 2 && a[0] == '-' && unicode.IsLetter(rune(a[1])) {
			if strings.ContainsRune(cliValued[cmd], rune(a[1])) {
				if i+1 >= len(f) {
					fmt.Fprintf(sh.err, "org.apache.commons.cli.MissingArgumentException: Missing argument for option: %c\n", a[1])
					return 1
				}
				opts[a] = f[i+1]
				i++
			} else {
				opts[a] = ""
			}
			continue
		}
		rest = append(rest, a)
	}
	has := func(o string) bool { _, ok := opts[o]; return ok }
	version := int32(-1)
	if v, ok := opts["-v"]; ok && cmd != "reconfig" {
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil {
			fmt.Fprintf(sh.err, "version %q is not a number\n", v)
			return 1
		}
		version = int32(n)
	}
	need := func(n int) bool {
		if len(rest) < n {
			fmt.Fprint(sh.err, cliUsage)
			return false
		}
		return true
	}
	// The commands that need no session.
	switch cmd {
	case "history":
		// The last ten and this one, numbered from the first.
		for i := max(0, len(sh.history)-11); i < len(sh.history); i++ {
			fmt.Fprintf(sh.out, "%d - %s\n", i, sh.history[i])
		}
		return 0
	case "redo":
		if !need(1) {
			return 1
		}
		n, err := strconv.ParseInt(rest[0], 0, 32)
		this := len(sh.history) - 1
		if err != nil || n < 0 || int(n) >= this {
			fmt.Fprintln(sh.err, "Command index out of range")
			return 1
		}
		again := splitCommand(sh.history[n])
		if again[0] == "redo" {
			fmt.Fprintln(sh.err, "No redoing redos")
			return 1
		}
		sh.history[this] = sh.history[n]
		return sh.run(again)
	case "printwatches":
		if len(rest) == 0 {
			fmt.Fprintf(sh.out, "printwatches is %s\n", map[bool]string{true: "on", false: "off"}[sh.printWatches.Load()])
		} else {
			sh.printWatches.Store(rest[0] == "on")
		}
		return 0
	case "connect":
		server := sh.server
		if len(rest) > 0 {
			server = rest[0]
		}
		sh.disconnect()
		if err := sh.connect(server); err != nil {
			fmt.Fprintln(sh.err, err)
			return 1
		}
		return 0
	case "version":
		fmt.Fprintln(sh.out, "ZooKeeper CLI version: "+versionLine())
		return 0
	case "help":
		fmt.Fprint(sh.out, cliUsage)
		return 0
	}
	if !slices.Contains(cliCommands, cmd) {
		fmt.Fprint(sh.err, cliUsage)
		fmt.Fprintf(sh.err, "Command not found: Command not found %s\n", cmd)
		return 127
	}
	conn := sh.conn.Load()
	if conn == nil {
		fmt.Fprintln(sh.out, "Not connected")
		return 0
	}
	// The path is checked before anything is sent, as a Java client does.
	if len(rest) > 0 && cliPathArg[cmd] {
		p := rest[0]
		if cmd == "create" && has("-s") {
			p += "1" // a sequential znode's path may end in /
		}
		if msg := pathError(p); msg != "" {
			fmt.Fprintln(sh.err, msg)
			return 1
		}
	}
	var err error
	switch cmd {
	case "close":
		sh.disconnect()
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
		var st wire.Stat
		if kids, st, err = conn.Children(rest[0], has("-w")); err == nil {
			sort.Strings(kids)
			fmt.Fprintf(sh.out, "[%s]\n", strings.Join(kids, ", "))
			if has("-s") {
				sh.printStat(st)
			}
		}
	case "get", "config":
		path := zkConfigNode
		if cmd == "get" {
			if !need(1) {
				return 1
			}
			path = rest[0]
		}
		var data []byte
		var st wire.Stat
		if data, st, err = conn.Get(path, has("-w")); err == nil {
			switch {
			case cmd == "config" && has("-c"):
				fmt.Fprintln(sh.out, clientConfig(string(data)))
			case data == nil:
				fmt.Fprintln(sh.out, "null")
			default:
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
		var st wire.Stat
		if st, ok, err = conn.Exists(rest[0], has("-w")); err == nil {
			if !ok {
				err = wire.ErrNoNode
			} else {
				sh.printStat(st)
			}
		}
	case "set":
		if !need(2) {
			return 1
		}
		var st wire.Stat
		if st, err = conn.Set(rest[0], []byte(rest[1]), version); err == nil && has("-s") {
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
		acl := []wire.ACL{{Perms: wire.PermAll, ID: wire.Id{Scheme: "world", ID: "anyone"}}}
		if len(rest) > 2 {
			if acl, err = parseACL(rest[2]); err != nil {
				fmt.Fprintln(sh.err, err)
				return 1
			}
		}
		mode, ttl := wire.ModePersistent, int64(0)
		switch {
		case has("-c"):
			mode = wire.ModeContainer
		case has("-t"):
			if ttl, err = strconv.ParseInt(opts["-t"], 10, 64); err != nil {
				fmt.Fprintf(sh.err, "ttl %q is not a number\n", opts["-t"])
				return 1
			}
			mode = wire.ModePersistentWithTTL
			if has("-s") {
				mode = wire.ModePersistentSequentialWithTTL
			}
		case has("-e") && has("-s"):
			mode = wire.ModeEphemeralSequential
		case has("-e"):
			mode = wire.ModeEphemeral
		case has("-s"):
			mode = wire.ModePersistentSequential
		}
		var created string
		if created, err = conn.Create(rest[0], data, acl, mode, ttl); err == nil {
			fmt.Fprintf(sh.out, "Created %s\n", created)
		}
	case "delete":
		if !need(1) {
			return 1
		}
		err = conn.Delete(rest[0], version)
	case "deleteall":
		if !need(1) {
			return 1
		}
		if b, ok := opts["-b"]; ok {
			if n, perr := strconv.Atoi(b); perr != nil || n <= 0 {
				fmt.Fprintf(sh.err, "batch size %q is not a positive number\n", b)
				return 1
			}
		}
		var paths []string
		if paths, err = sh.subtree(rest[0]); err == nil {
			for i := len(paths) - 1; i >= 0 && err == nil; i-- {
				if err = conn.Delete(paths[i], -1); errors.Is(err, wire.ErrNoNode) {
					err = nil
				}
			}
		}
	case "getAcl":
		if !need(1) {
			return 1
		}
		var acl []wire.ACL
		var st wire.Stat
		if acl, st, err = conn.GetACL(rest[0]); err == nil {
			for _, a := range acl {
				fmt.Fprintf(sh.out, "'%s,'%s\n: %s\n", a.ID.Scheme, a.ID.ID, permString(a.Perms))
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
			fmt.Fprintln(sh.err, perr)
			return 1
		}
		paths := []string{rest[0]}
		if has("-R") {
			if paths, err = sh.subtree(rest[0]); err != nil {
				break
			}
		}
		var st wire.Stat
		for _, p := range paths {
			if st, err = conn.SetACL(p, acl, version); err != nil {
				break
			}
		}
		if err == nil && has("-s") && !has("-R") {
			sh.printStat(st)
		}
	case "sync":
		if !need(1) {
			return 1
		}
		if err = conn.Sync(rest[0]); err == nil {
			fmt.Fprintln(sh.out, "Sync is OK")
		}
	case "getAllChildrenNumber":
		if !need(1) {
			return 1
		}
		var n int32
		if n, err = conn.AllChildrenNumber(rest[0]); err == nil {
			fmt.Fprintln(sh.out, n)
		}
	case "getEphemerals":
		prefix := "/"
		if len(rest) > 0 {
			prefix = rest[0]
		}
		var eph []string
		if eph, err = conn.Ephemerals(prefix); err == nil {
			fmt.Fprintf(sh.out, "[%s]\n", strings.Join(eph, ", "))
		}
	case "whoami":
		var ids []wire.ClientInfo
		if ids, err = conn.WhoAmI(); err == nil {
			fmt.Fprintln(sh.out, "Auth scheme: User")
			for _, id := range ids {
				fmt.Fprintf(sh.out, "%s: %s\n", id.AuthScheme, id.User)
			}
		}
	case "addWatch":
		if len(rest) != 1 {
			fmt.Fprintln(sh.err, "addWatch [-m mode] path # optional mode is one of [PERSISTENT, PERSISTENT_RECURSIVE] - default is PERSISTENT_RECURSIVE")
			return 1
		}
		mode := wire.AddWatchPersistentRecursive
		if m, ok := opts["-m"]; ok {
			switch strings.ToUpper(m) {
			case "PERSISTENT":
				mode = wire.AddWatchPersistent
			case "PERSISTENT_RECURSIVE":
			default:
				fmt.Fprintln(sh.err, "addWatch [-m mode] path # optional mode is one of [PERSISTENT, PERSISTENT_RECURSIVE] - default is PERSISTENT_RECURSIVE")
				return 1
			}
		}
		err = conn.AddWatch(rest[0], mode)
	case "removewatches":
		if !need(1) {
			return 1
		}
		kind := wire.WatcherAny
		switch {
		case has("-c"):
			kind = wire.WatcherChildren
		case has("-d"):
			kind = wire.WatcherData
		}
		if err = conn.RemoveWatches(rest[0], kind, has("-l")); err != nil && errors.Is(err, wire.ErrNoWatcher) {
			fmt.Fprintf(sh.err, "KeeperErrorCode = No such watcher for %s\n", rest[0])
			return 1
		}
	case "reconfig":
		return sh.reconfig(conn, opts)
	case "addauth":
		if !need(2) {
			return 1
		}
		err = conn.AddAuth(rest[0], []byte(rest[1]))
	case "listquota", "setquota", "delquota":
		if !need(1) {
			return 1
		}
		return sh.quota(cmd, opts, rest[0])
	}
	if err != nil {
		path := ""
		if len(rest) > 0 {
			path = rest[0]
		}
		fmt.Fprintln(sh.err, cliError(err, path))
		return 1
	}
	return 0
}

// cliPathArg are the commands whose first argument is a znode path.
var cliPathArg = map[string]bool{"ls": true, "get": true, "stat": true, "set": true, "create": true,
	"delete": true, "deleteall": true, "getAcl": true, "setAcl": true, "sync": true,
	"getAllChildrenNumber": true, "getEphemerals": true, "addWatch": true, "removewatches": true,
	"listquota": true, "setquota": true, "delquota": true}

// reconfig changes the ensemble's membership as zkCli.sh's reconfig
// does: -add and -remove incrementally, -members or -file as a whole.
func (sh *shell) reconfig(conn *zkclient.Conn, opts map[string]string) int {
	var joining, leaving, members *string
	str := func(s string) *string { return &s }
	if v, ok := opts["-add"]; ok {
		joining = str(v)
	}
	if v, ok := opts["-remove"]; ok {
		leaving = str(v)
	}
	if v, ok := opts["-members"]; ok {
		members = str(v)
	}
	if f, ok := opts["-file"]; ok {
		data, err := os.ReadFile(f)
		if err != nil {
			fmt.Fprintln(sh.err, err)
			return 1
		}
		var lines []string
		for _, l := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(strings.TrimSpace(l), "server.") {
				lines = append(lines, strings.TrimSpace(l))
			}
		}
		members = str(strings.Join(lines, ","))
	}
	if joining == nil && leaving == nil && members == nil {
		fmt.Fprintln(sh.err, "reconfig [-s] [-v version] [[-file path] | [-members serverID=host:port1:port2;port3[,...]*]] | [-add serverId=host:port1:port2;port3[,...]]* [-remove serverId[,...]*]")
		return 1
	}
	from := int64(-1)
	if v, ok := opts["-v"]; ok {
		n, err := strconv.ParseInt(v, 16, 64)
		if err != nil {
			fmt.Fprintf(sh.err, "version %q is not a hexadecimal number\n", v)
			return 1
		}
		from = n
	}
	data, st, err := conn.Reconfig(joining, leaving, members, from)
	if err != nil {
		fmt.Fprintln(sh.err, cliError(err, ""))
		return 1
	}
	fmt.Fprintln(sh.out, "Committed new configuration:\n"+string(data))
	if _, ok := opts["-s"]; ok {
		sh.printStat(st)
	}
	return 0
}

// zkConfigNode holds the ensemble's configuration, as config reads it.
const zkConfigNode = "/zookeeper/config"

// clientConfig is config -c's line: the configuration's version, then
// each server's client address.
func clientConfig(cfg string) string {
	version, addrs := "", []string{}
	for _, line := range strings.Split(cfg, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok {
			continue
		}
		if k == "version" {
			version = v
		}
		if !strings.HasPrefix(k, "server.") {
			continue
		}
		_, client, ok := strings.Cut(v, ";")
		if !ok {
			continue
		}
		if !strings.Contains(client, ":") {
			client = "0.0.0.0:" + client
		}
		addrs = append(addrs, client)
	}
	return version + " " + strings.Join(addrs, ",")
}

// subtree lists path and every znode under it breadth first, each
// parent's children in the order the server gives them, as zkCli.sh's
// ls -R does (ZKUtil.listSubTreeBFS).
func (sh *shell) subtree(path string) ([]string, error) {
	conn := sh.conn.Load()
	if conn == nil {
		return nil, wire.ErrConnectionLoss
	}
	tree := []string{path}
	for i := 0; i < len(tree); i++ {
		kids, _, err := conn.Children(tree[i], false)
		if errors.Is(err, wire.ErrNoNode) && i > 0 {
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
func (sh *shell) printStat(st wire.Stat) {
	fmt.Fprintf(sh.out, "cZxid = 0x%x\nctime = %s\nmZxid = 0x%x\nmtime = %s\npZxid = 0x%x\n",
		uint64(st.Czxid), java.Date(time.UnixMilli(st.Ctime).In(cliZone)),
		uint64(st.Mzxid), java.Date(time.UnixMilli(st.Mtime).In(cliZone)), uint64(st.Pzxid))
	fmt.Fprintf(sh.out, "cversion = %d\ndataVersion = %d\naclVersion = %d\nephemeralOwner = 0x%x\ndataLength = %d\nnumChildren = %d\n",
		st.Cversion, st.Version, st.Aversion, uint64(st.EphemeralOwner), st.DataLength, st.NumChildren)
}

// cliError is zkCli.sh's message for a refused command.
func cliError(err error, path string) string {
	var code wire.ErrCode
	if !errors.As(err, &code) {
		return err.Error()
	}
	switch code {
	case wire.ErrNoNode:
		return "Node does not exist: " + path
	case wire.ErrNoChildrenForEphemerals:
		return "Ephemerals cannot have children: " + path
	case wire.ErrNodeExists:
		return "Node already exists: " + path
	case wire.ErrNotEmpty:
		return "Node not empty: " + path
	case wire.ErrNotReadOnly:
		return "Not a read-only call: " + path
	case wire.ErrInvalidACL:
		return "Acl is not valid : " + path
	case wire.ErrNoAuth:
		return "Insufficient permission : " + path
	case wire.ErrBadArguments:
		return "Arguments are not valid : " + path
	case wire.ErrBadVersion:
		return "version No is not valid : " + path
	case wire.ErrReconfigInProgress:
		return "Another reconfiguration is in progress -- concurrent reconfigs not supported (yet)"
	case wire.ErrNewConfigNoQuorum:
		return "No quorum of new config is connected and up-to-date with the leader of last commmitted config - try invoking reconfiguration after new servers are connected and synced"
	case wire.ErrQuotaExceeded:
		return "Quota has exceeded : " + path
	}
	msg := "KeeperErrorCode = " + keeperMessages[code]
	if keeperMessages[code] == "" {
		msg = fmt.Sprintf("KeeperErrorCode = Unknown error %d", int32(code))
	}
	if path != "" {
		msg += " for " + path
	}
	return msg
}

// keeperMessages are the Java client's words for each error code, in
// the messages of its exceptions.
var keeperMessages = map[wire.ErrCode]string{
	wire.ErrSystemError:                  "SystemError",
	wire.ErrRuntimeInconsistency:         "RuntimeInconsistency",
	wire.ErrDataInconsistency:            "DataInconsistency",
	wire.ErrConnectionLoss:               "ConnectionLoss",
	wire.ErrMarshallingError:             "MarshallingError",
	wire.ErrNewConfigNoQuorum:            "NewConfigNoQuorum",
	wire.ErrReconfigInProgress:           "ReconfigInProgress",
	wire.ErrUnimplemented:                "Unimplemented",
	wire.ErrOperationTimeout:             "OperationTimeout",
	wire.ErrBadArguments:                 "BadArguments",
	wire.ErrAPIError:                     "APIError",
	wire.ErrNoNode:                       "NoNode",
	wire.ErrNoAuth:                       "NoAuth",
	wire.ErrBadVersion:                   "BadVersion",
	wire.ErrNoChildrenForEphemerals:      "NoChildrenForEphemerals",
	wire.ErrNodeExists:                   "NodeExists",
	wire.ErrInvalidACL:                   "InvalidACL",
	wire.ErrAuthFailed:                   "AuthFailed",
	wire.ErrNotEmpty:                     "Directory not empty",
	wire.ErrSessionExpired:               "Session expired",
	wire.ErrInvalidCallback:              "Invalid callback",
	wire.ErrSessionMoved:                 "Session moved",
	wire.ErrNotReadOnly:                  "Not a read-only call",
	wire.ErrEphemeralOnLocalSession:      "Ephemeral node on local session",
	wire.ErrNoWatcher:                    "No such watcher",
	wire.ErrReconfigDisabled:             "Reconfig is disabled",
	wire.ErrSessionClosedRequireSASLAuth: "Session closed because client failed to authenticate",
	wire.ErrQuotaExceeded:                "Quota has exceeded",
	wire.ErrThrottledOp:                  "Op throttled due to high load",
}

// pathError is what a Java client says of a path it refuses, without
// asking the server: which rule the path breaks, and where.
func pathError(path string) string {
	switch {
	case path == "":
		return "Path length must be > 0"
	case path[0] != '/':
		return "Path must start with / character"
	case path == "/":
		return ""
	case strings.HasSuffix(path, "/"):
		return "Path must not end with / character"
	}
	r := []rune(path)
	for i := 1; i < len(r); i++ {
		c, last := r[i], r[i-1]
		next := i+1 == len(r) || r[i+1] == '/'
		reason := ""
		switch {
		case c == 0:
			reason = "null character not allowed"
		case c == '/' && last == '/':
			reason = "empty node name specified"
		case c == '.' && last == '.' && r[i-2] == '/' && next,
			c == '.' && last == '/' && next:
			reason = "relative paths not allowed"
		case c < 0x20 || c >= 0x7f && c <= 0x9f || c >= 0xd800 && c <= 0xf8ff || c >= 0xfff0:
			reason = "invalid character"
		}
		if reason != "" {
			return fmt.Sprintf("Invalid path string \"%s\" caused by %s @%d", path, reason, i)
		}
	}
	return ""
}

// permString is zkCli.sh's form of a permission set: its letters in the
// order c, d, r, w, a.
func permString(p wire.Perm) string {
	var b strings.Builder
	for _, x := range []struct {
		bit    wire.Perm
		letter byte
	}{{wire.PermCreate, 'c'}, {wire.PermDelete, 'd'}, {wire.PermRead, 'r'}, {wire.PermWrite, 'w'}, {wire.PermAdmin, 'a'}} {
		if p&x.bit != 0 {
			b.WriteByte(x.letter)
		}
	}
	return b.String()
}

// parseACL reads zkCli.sh's ACL form: scheme:id:perms, comma-separated;
// the id may hold colons (digest:user:hash:cdrwa).
func parseACL(s string) ([]wire.ACL, error) {
	var out []wire.ACL
	for _, part := range strings.Split(s, ",") {
		first := strings.IndexByte(part, ':')
		last := strings.LastIndexByte(part, ':')
		if first < 0 || last == first {
			return nil, fmt.Errorf("%s does not have the form scheme:id:perm", part)
		}
		var perms wire.Perm
		for _, c := range part[last+1:] {
			switch c {
			case 'c':
				perms |= wire.PermCreate
			case 'd':
				perms |= wire.PermDelete
			case 'r':
				perms |= wire.PermRead
			case 'w':
				perms |= wire.PermWrite
			case 'a':
				perms |= wire.PermAdmin
			default:
				return nil, fmt.Errorf("unknown perm type: %c", c)
			}
		}
		out = append(out, wire.ACL{ID: wire.Id{Scheme: part[:first], ID: part[first+1 : last]}, Perms: perms})
	}
	return out, nil
}
