package check

import (
	"fmt"
	"image/color"
	"math"
	"sort"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"

	"zkd/bench"
)

// plotBucket is the width of one point of the timeline.
const plotBucket = 500 * time.Millisecond

// Timeline draws a run into file (.png or .svg): above, the operations
// per second that happened, that the server refused (a compare-and-set
// that lost its race, say) and that got no answer; below, the 99th percentile latency of those that happened;
// each fault a shaded band over both, named upright at its top.
func Timeline(file string, r *Report) error {
	if len(r.Ops) == 0 {
		return fmt.Errorf("check: no operations to draw")
	}
	end := r.Start
	for _, op := range r.Ops {
		if op.Return.After(end) {
			end = op.Return
		}
	}
	n := int(end.Sub(r.Start)/plotBucket) + 1
	ok, refused, unknown := make([]float64, n), make([]float64, n), make([]float64, n)
	lat := make([][]float64, n)
	for _, op := range r.Ops {
		b := int(op.Return.Sub(r.Start) / plotBucket)
		if b < 0 || b >= n {
			continue
		}
		switch op.Outcome {
		case OK:
			ok[b]++
			lat[b] = append(lat[b], float64(op.Return.Sub(op.Call).Microseconds())/1000)
		case Failed:
			refused[b]++
		default:
			unknown[b]++
		}
	}
	per := float64(time.Second / plotBucket)
	rate := func(counts []float64) plotter.XYs {
		xy := make(plotter.XYs, n)
		for i, c := range counts {
			xy[i] = plotter.XY{X: float64(i) * plotBucket.Seconds(), Y: c * per}
		}
		return xy
	}
	var p99 plotter.XYs
	for i, l := range lat {
		if len(l) == 0 {
			continue
		}
		sort.Float64s(l)
		p99 = append(p99, plotter.XY{X: float64(i) * plotBucket.Seconds(), Y: l[len(l)*99/100]})
	}

	top := plot.New()
	top.Title.Text = "operations per second"
	top.X.Label.Text = "seconds"
	ymax := 0.0
	for _, xy := range rate(ok) {
		ymax = max(ymax, xy.Y)
	}
	top.Y.Max = ymax * 1.6 // room above the lines for the faults' names
	bottom := plot.New()
	bottom.Title.Text = "99th percentile latency of the operations that happened (ms)"
	bottom.X.Label.Text = "seconds"
	lmax := 0.0
	for _, xy := range p99 {
		lmax = max(lmax, xy.Y)
	}
	bottom.Y.Max = lmax * 1.6
	for _, panel := range []*plot.Plot{top, bottom} {
		if err := shadeFaults(panel, r); err != nil {
			return err
		}
	}
	for _, line := range []struct {
		xy    plotter.XYs
		name  string
		color color.RGBA
		p     *plot.Plot
	}{
		{rate(ok), "happened", color.RGBA{R: 30, G: 100, B: 200, A: 255}, top},
		{rate(refused), "refused", color.RGBA{R: 120, G: 120, B: 120, A: 255}, top},
		{rate(unknown), "no answer", color.RGBA{R: 200, G: 60, B: 40, A: 255}, top},
		{p99, "p99", color.RGBA{R: 30, G: 100, B: 200, A: 255}, bottom},
	} {
		if len(line.xy) == 0 {
			continue
		}
		l, err := plotter.NewLine(line.xy)
		if err != nil {
			return err
		}
		l.Color = line.color
		line.p.Add(l)
		line.p.Legend.Add(line.name, l)
	}

	return bench.SavePanels(file, [][]*plot.Plot{{top}, {bottom}}, 26*vg.Centimeter, 18*vg.Centimeter)
}

// shadeFaults puts a band over p for each fault made, its name and
// target above it.
func shadeFaults(p *plot.Plot, r *Report) error {
	var labels plotter.XYLabels
	for _, f := range r.Faults {
		if f.Err != "" {
			continue
		}
		x0, x1 := f.Start.Sub(r.Start).Seconds(), f.End.Sub(r.Start).Seconds()
		band, err := plotter.NewPolygon(plotter.XYs{{X: x0, Y: 0}, {X: x1, Y: 0}, {X: x1, Y: p.Y.Max}, {X: x0, Y: p.Y.Max}})
		if err != nil {
			return err
		}
		band.Color = color.NRGBA{R: 240, G: 200, B: 80, A: 90}
		band.LineStyle.Width = 0
		p.Add(band)
		labels.XYs = append(labels.XYs, plotter.XY{X: x0, Y: p.Y.Max * 0.97})
		labels.Labels = append(labels.Labels, strings.TrimSpace(fmt.Sprintf("%s %v %s", f.Name, f.Target, f.Detail)))
	}
	if len(labels.XYs) == 0 {
		return nil
	}
	l, err := plotter.NewLabels(labels)
	if err != nil {
		return err
	}
	for i := range l.TextStyle {
		// Upright, down from the top of the band: many faults in a
		// long run would write over each other side by side.
		l.TextStyle[i].Font.Size = vg.Points(7)
		l.TextStyle[i].Rotation = math.Pi / 2
		l.TextStyle[i].XAlign = text.XRight
		l.TextStyle[i].YAlign = text.YTop
	}
	p.Add(l)
	return nil
}
