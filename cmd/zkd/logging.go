package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"sync"
)

// startupHandler holds the log records written before the configuration
// says how to log (the configuration's own warnings), and hands them and
// every later one to the handler set once it is read.
type startupHandler struct {
	mu    *sync.Mutex
	state *startupState
	attrs []slog.Attr
	group string
}

type startupState struct {
	held []slog.Record
	to   slog.Handler
}

func newStartupHandler() *startupHandler {
	return &startupHandler{mu: &sync.Mutex{}, state: &startupState{}}
}

func (h *startupHandler) Enabled(ctx context.Context, l slog.Level) bool {
	h.mu.Lock()
	to := h.state.to
	h.mu.Unlock()
	return to == nil || to.Enabled(ctx, l)
}

func (h *startupHandler) Handle(ctx context.Context, r slog.Record) error {
	h.mu.Lock()
	to := h.state.to
	if to == nil {
		r = r.Clone()
		r.AddAttrs(h.attrs...)
		h.state.held = append(h.state.held, r)
		h.mu.Unlock()
		return nil
	}
	h.mu.Unlock()
	return h.bound(to).Handle(ctx, r)
}

// bound is to with this handler's attributes and group.
func (h *startupHandler) bound(to slog.Handler) slog.Handler {
	if h.group != "" {
		to = to.WithGroup(h.group)
	}
	if len(h.attrs) > 0 {
		to = to.WithAttrs(h.attrs)
	}
	return to
}

func (h *startupHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(append([]slog.Attr(nil), h.attrs...), attrs...)
	return &c
}

func (h *startupHandler) WithGroup(name string) slog.Handler {
	c := *h
	c.group = name
	return &c
}

// set makes to the handler from now on, and writes the records held.
func (h *startupHandler) set(to slog.Handler) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range h.state.held {
		if to.Enabled(context.Background(), r.Level) {
			to.Handle(context.Background(), r)
		}
	}
	h.state.held, h.state.to = nil, to
}

// logHandler is the handler zoo.cfg asks for (zkd.log.format and
// zkd.log.level); ZKD_LOG_LEVEL in the environment wins over the level.
// auditHandler writes the audit events (audit.enable) in the log's format,
// at INFO and above whatever zkd.log.level or ZKD_LOG_LEVEL say: an
// operator who quiets the log keeps the audit trail, as ZooKeeper's audit
// logger keeps its own level.
func auditHandler(w io.Writer, format string) slog.Handler {
	opts := &slog.HandlerOptions{Level: slog.LevelInfo}
	if format == "json" {
		return slog.NewJSONHandler(w, opts)
	}
	return slog.NewTextHandler(w, opts)
}

func logHandler(w io.Writer, format string, level slog.Level) slog.Handler {
	if env := os.Getenv("ZKD_LOG_LEVEL"); env != "" {
		var l slog.Level
		if l.UnmarshalText([]byte(env)) == nil {
			level = l
		}
	}
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.NewJSONHandler(w, opts)
	}
	return slog.NewTextHandler(w, opts)
}
