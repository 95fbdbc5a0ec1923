package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"text/tabwriter"
)

// WriteTable prints a result as an aligned table: one row per phase with
// its throughput, the spread of its per-interval samples, latency
// percentiles and errors.
func WriteTable(out io.Writer, r *Result) {
	c := r.Config
	label := ""
	if r.Server != "" {
		label = " [" + r.Server + "]"
	}
	fmt.Fprintf(out, "%s%s: servers=%s clients=%d outstanding=%d data=%dB znodes=%d",
		r.Workload, label, strings.Join(c.Servers, ","), c.Clients, c.Outstanding, c.DataSize, c.Znodes)
	if c.Mode != "" {
		fmt.Fprintf(out, " mode=%s", c.Mode)
	}
	if r.Workload != "latency" {
		fmt.Fprintf(out, " duration=%gs warmup=%gs", c.Duration, c.Warmup)
	}
	fmt.Fprintln(out)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "phase\tops\tops/s\t±sd\tp50 ms\tp90 ms\tp99 ms\tp99.9 ms\tmax ms\terrors\t")
	for _, ph := range r.Phases {
		l := ph.Latency["all"]
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%s\t\n", ph.Name, ph.Ops, thousands(ph.OpsPerSec),
			spread(ph.Samples), l.P50, l.P90, l.P99, l.P999, l.Max, errorList(ph.Errors))
	}
	tw.Flush()
}

// spread is the standard deviation of the samples relative to their mean.
func spread(samples []float64) string {
	if len(samples) < 2 {
		return "-"
	}
	mean, sd := meanSD(samples)
	if mean == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", 100*sd/mean)
}

func meanSD(xs []float64) (float64, float64) {
	if len(xs) == 0 {
		return 0, 0
	}
	var sum float64
	for _, x := range xs {
		sum += x
	}
	mean := sum / float64(len(xs))
	var sq float64
	for _, x := range xs {
		sq += (x - mean) * (x - mean)
	}
	if len(xs) < 2 {
		return mean, 0
	}
	return mean, math.Sqrt(sq / float64(len(xs)-1))
}

func errorList(errs map[string]int64) string {
	if len(errs) == 0 {
		return "0"
	}
	var parts []string
	for code, n := range errs {
		parts = append(parts, fmt.Sprintf("%s=%d", code, n))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

// thousands formats n with thousands separators.
func thousands(f float64) string {
	n := int64(math.Round(f))
	s := fmt.Sprint(n)
	if n < 0 {
		return s
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// WriteJSON writes results as indented JSON.
func WriteJSON(out io.Writer, v any) error {
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
