package ztree

import (
	"strings"
	"unicode/utf8"
)

// Reserved paths: ZooKeeper's own subtree and the nodes in it that a client
// may neither delete nor replace.
const (
	rootPath        = "/"
	procPath        = "/zookeeper"
	quotaPath       = "/zookeeper/quota"
	configPath      = "/zookeeper/config"
	systemSubtree   = "/zookeeper/" // left out of the digest
	quotaLimitNode  = "zookeeper_limits"
	quotaStatNode   = "zookeeper_stats"
	quotaPathPrefix = quotaPath + "/"
)

// ValidatePath reports whether path is a valid znode path by ZooKeeper's
// rules (PathUtils.validatePath): absolute, no empty segment, no trailing
// slash, no "." or ".." segment, and none of the characters ZooKeeper
// refuses (NUL, C0 and C1 controls, DEL, surrogates and the private use
// area, U+FFF0 and above). Paths are UTF-8; a byte sequence that is not
// valid UTF-8 is refused too.
func ValidatePath(path string) bool {
	n := len(path)
	if n == 0 || path[0] != '/' {
		return false
	}
	if n == 1 {
		return true
	}
	if path[n-1] == '/' {
		return false
	}
	for i := 1; i < n; {
		c := path[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(path[i:])
			if r == utf8.RuneError && size == 1 || badRune(r) {
				return false
			}
			i += size
			continue
		}
		switch {
		case c < 0x20 || c == 0x7f:
			return false
		case c == '/' && path[i-1] == '/':
			return false
		case c == '.' && path[i-1] == '.':
			if path[i-2] == '/' && (i+1 == n || path[i+1] == '/') {
				return false
			}
		case c == '.':
			if path[i-1] == '/' && (i+1 == n || path[i+1] == '/') {
				return false
			}
		}
		i++
	}
	return true
}

// badRune is the non-ASCII part of ZooKeeper's refused character ranges.
// ZooKeeper checks UTF-16 code units, so every rune outside the Basic
// Multilingual Plane (a surrogate pair there) is refused as well.
func badRune(r rune) bool {
	return r <= 0x9f || r >= 0xd800 && r <= 0xf8ff || r >= 0xfff0
}

// splitPath returns the parent path of a non-root path ("/" for children of
// the root) and its last segment.
func splitPath(path string) (parent, name string) {
	i := strings.LastIndexByte(path, '/')
	if i <= 0 {
		return rootPath, path[i+1:]
	}
	return path[:i], path[i+1:]
}

func isSpecialPath(path string) bool {
	return path == rootPath || path == procPath || path == quotaPath || path == configPath
}
