package main

import (
	"fmt"
	"html"
	"math"
	"strings"
	"time"
)

type series struct {
	name   string
	color  string
	dashed bool
	pts    [][2]float64 // N, seconds
	ok     []bool       // false: the run did not serve every node (drawn hollow)
}

// plotSVG draws time against N (both log scale) for resume (addresses known, exit) and suspend,
// each with its lower bound dashed.
func plotSVG(res *results) string {
	pick := func(kind string, f func(Run) time.Duration) ([][2]float64, []bool) {
		var pts [][2]float64
		var ok []bool
		for _, r := range runsOf(res.Runs, kind) {
			if d := f(r); d > 0 {
				pts = append(pts, [2]float64{float64(r.Nodes), d.Seconds()})
				ok = append(ok, r.OK)
			}
		}
		return pts, ok
	}
	mk := func(name, color string, dashed bool, kind string, f func(Run) time.Duration) series {
		pts, ok := pick(kind, f)
		return series{name: name, color: color, dashed: dashed, pts: pts, ok: ok}
	}
	ss := []series{
		mk("resume: addresses known", "#1f77b4", false, "resume", func(r Run) time.Duration { return r.AddrKnown }),
		mk("resume: addresses known, EC2 bound", "#1f77b4", true, "resume", func(r Run) time.Duration { return r.BoundAddr }),
		mk("resume: exit", "#2ca02c", false, "resume", func(r Run) time.Duration { return r.Proc.Wall }),
		mk("resume: exit, EC2 bound", "#2ca02c", true, "resume", func(r Run) time.Duration { return r.BoundExit }),
		mk("suspend: exit", "#d62728", false, "suspend", func(r Run) time.Duration { return r.Proc.Wall }),
		mk("suspend: exit, EC2 bound", "#d62728", true, "suspend", func(r Run) time.Duration { return r.BoundExit }),
	}
	const W, H, left, right, top, bottom = 760, 460, 70, 250, 40, 50
	xmin, xmax, ymin, ymax := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	for _, s := range ss {
		for _, p := range s.pts {
			xmin, xmax = math.Min(xmin, p[0]), math.Max(xmax, p[0])
			ymin, ymax = math.Min(ymin, p[1]), math.Max(ymax, p[1])
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", W, H, W, H)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", W, H)
	fmt.Fprintf(&b, `<text x="%d" y="20" font-size="14">slurm-ec2 against ec2sim -latency aws -throttle aws: time vs nodes (log-log)</text>`+"\n", left)
	if math.IsInf(xmin, 0) {
		b.WriteString(`<text x="100" y="200">no runs</text></svg>` + "\n")
		return b.String()
	}
	// Decades around the data.
	x0, x1 := math.Floor(math.Log10(xmin)), math.Ceil(math.Log10(xmax))
	y0, y1 := math.Floor(math.Log10(ymin)), math.Ceil(math.Log10(ymax))
	if x1 == x0 {
		x1++
	}
	if y1 == y0 {
		y1++
	}
	pw, ph := float64(W-left-right), float64(H-top-bottom)
	px := func(v float64) float64 { return float64(left) + (math.Log10(v)-x0)/(x1-x0)*pw }
	py := func(v float64) float64 { return float64(top) + (y1-math.Log10(v))/(y1-y0)*ph }
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.0f" height="%.0f" fill="none" stroke="#444"/>`+"\n", left, top, pw, ph)
	for e := x0; e <= x1; e++ {
		x := px(math.Pow(10, e))
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%.0f" stroke="#ddd"/>`, x, top, x, float64(top)+ph)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" text-anchor="middle">%s</text>`+"\n", x, float64(top)+ph+18, fmtNum(math.Pow(10, e)))
	}
	for e := y0; e <= y1; e++ {
		y := py(math.Pow(10, e))
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#ddd"/>`, left, y, float64(left)+pw, y)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s s</text>`+"\n", left-6, y+4, fmtNum(math.Pow(10, e)))
	}
	fmt.Fprintf(&b, `<text x="%.0f" y="%d" text-anchor="middle">nodes (N)</text>`+"\n", float64(left)+pw/2, H-10)
	for i, s := range ss {
		if len(s.pts) == 0 {
			continue
		}
		var pts []string
		for _, p := range s.pts {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(p[0]), py(p[1])))
		}
		dash := ""
		if s.dashed {
			dash = ` stroke-dasharray="6,4"`
		}
		fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"%s/>`+"\n", strings.Join(pts, " "), s.color, dash)
		if !s.dashed {
			for j, p := range s.pts {
				fill := s.color
				if !s.ok[j] {
					fill = "white"
				}
				fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="4" fill="%s" stroke="%s"/>`, px(p[0]), py(p[1]), fill, s.color)
			}
			b.WriteString("\n")
		}
		ly := top + 10 + i*22
		lx := W - right + 15
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"%s/>`, lx, ly, lx+28, ly, s.color, dash)
		fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`+"\n", lx+34, ly+4, html.EscapeString(s.name))
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="11">hollow point: not every node served</text>`+"\n", W-right+15, top+10+len(ss)*22+4)
	b.WriteString("</svg>\n")
	return b.String()
}

func fmtNum(v float64) string {
	if v >= 1 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%g", v)
}
