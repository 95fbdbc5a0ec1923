package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// Plot draws results into file (.png or .svg): the throughput against
// read percentage of every saturate result, one line per server, and the
// latency CDFs of their phases, side by side.
func Plot(file string, results []*Result) error {
	var panels []*plot.Plot
	if p, ok := throughputPlot(results); ok {
		panels = append(panels, p)
	}
	cdf, err := cdfPlot(results)
	if err != nil {
		return err
	}
	panels = append(panels, cdf)

	return SavePanels(file, [][]*plot.Plot{panels}, vg.Length(len(panels))*14*vg.Centimeter, 11*vg.Centimeter)
}

// SavePanels draws a grid of plots, rows of panels aligned, into file
// (.png or .svg) of w × h.
func SavePanels(file string, grid [][]*plot.Plot, w, h vg.Length) error {
	ext := strings.ToLower(filepath.Ext(file))
	if ext != ".png" && ext != ".svg" {
		return fmt.Errorf("bench: plot file %s: use .png or .svg", file)
	}
	var canvas vg.CanvasWriterTo
	if ext == ".png" {
		canvas = vgimg.PngCanvas{Canvas: vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(110))}
	} else {
		canvas = vgsvg.New(w, h)
	}
	tiles := draw.Tiles{Rows: len(grid), Cols: len(grid[0]), PadX: vg.Centimeter, PadY: vg.Centimeter,
		PadTop: vg.Millimeter * 4, PadBottom: vg.Millimeter * 4, PadLeft: vg.Millimeter * 4, PadRight: vg.Millimeter * 4}
	canvases := plot.Align(grid, tiles, draw.New(canvas))
	for r, row := range grid {
		for c, p := range row {
			p.Draw(canvases[r][c])
		}
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := canvas.WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func label(r *Result) string {
	if r.Server != "" {
		return r.Server
	}
	return strings.Join(r.Config.Servers, ",")
}

// throughputPlot is the ZooKeeper paper's figure: ops/s against read %.
func throughputPlot(results []*Result) (*plot.Plot, bool) {
	p := plot.New()
	p.Title.Text = "Throughput vs. read percentage"
	p.X.Label.Text = "reads (%)"
	p.Y.Label.Text = "operations per second"
	p.X.Min, p.X.Max = 0, 100
	p.Y.Min = 0
	p.Legend.Top = true
	p.Add(plotter.NewGrid())
	n := 0
	for _, r := range results {
		if r.Workload != "saturate" {
			continue
		}
		var xys plotter.XYs
		for _, ph := range r.Phases {
			pct, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(ph.Name, "reads="), "%"))
			if err != nil {
				continue
			}
			xys = append(xys, plotter.XY{X: float64(pct), Y: ph.OpsPerSec})
		}
		l, pts, err := plotter.NewLinePoints(xys)
		if err != nil {
			continue
		}
		l.Color = plotutil.Color(n)
		l.Width = vg.Points(2)
		pts.Color = plotutil.Color(n)
		pts.Shape = plotutil.Shape(n)
		p.Add(l, pts)
		p.Legend.Add(label(r), l, pts)
		n++
	}
	p.Y.Tick.Marker = thousandsTicks{}
	// Headroom above the highest line keeps the legend off it.
	top := 0.0
	for _, r := range results {
		for _, ph := range r.Phases {
			top = max(top, ph.OpsPerSec)
		}
	}
	p.Y.Max = top * 1.25
	return p, n > 0
}

// cdfPlot draws the latency CDF of each phase (for saturate, the 0, 90 and
// 100 % read phases), one line per server and phase.
func cdfPlot(results []*Result) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "Latency CDF"
	p.X.Label.Text = "latency (ms, log scale)"
	p.Y.Label.Text = "fraction of requests"
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Y.Min, p.Y.Max = 0, 1
	// Top left stays clear: there every curve is still near zero.
	p.Legend.Top = true
	p.Legend.Left = true
	p.Legend.XOffs = vg.Millimeter * 3
	p.Legend.TextStyle.Font.Size = vg.Points(8)
	p.Add(plotter.NewGrid())
	n := 0
	for ri, r := range results {
		for _, ph := range r.Phases {
			if r.Workload == "saturate" && ph.Name != "reads=0%" && ph.Name != "reads=90%" && ph.Name != "reads=100%" {
				continue
			}
			if strings.HasPrefix(ph.Name, "setup") {
				continue
			}
			h := ph.Latency["all"].Hist()
			if h == nil || h.Count() == 0 {
				continue
			}
			lat, frac := h.CDF()
			xys := make(plotter.XYs, 0, len(lat))
			for i := range lat {
				x := ms(lat[i])
				if x <= 0 {
					continue
				}
				xys = append(xys, plotter.XY{X: x, Y: frac[i]})
			}
			if len(xys) == 0 {
				continue
			}
			l, err := plotter.NewLine(xys)
			if err != nil {
				return nil, err
			}
			l.Color = plotutil.Color(n)
			l.Dashes = plotutil.Dashes(ri)
			l.Width = vg.Points(1.5)
			p.Add(l)
			p.Legend.Add(label(r)+" "+ph.Name, l)
			n++
		}
	}
	if n == 0 {
		return nil, fmt.Errorf("bench: nothing to plot")
	}
	return p, nil
}

type thousandsTicks struct{}

func (thousandsTicks) Ticks(min, max float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(min, max)
	for i := range ticks {
		if ticks[i].Label != "" {
			ticks[i].Label = thousands(ticks[i].Value)
		}
	}
	return ticks
}
