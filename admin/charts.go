package admin

import (
	"strconv"
	"strings"
	"time"

	"github.com/orchestrator-go/orchestrator"
)

// The status page's charts: one small server-rendered SVG per endpoint
// (and per target) of its last 15 minutes, in three bands: request rate,
// p99 latency and errors, each scaled to its own peak. Presentation
// attributes and classes styled by the page's hashed stylesheet keep it
// within the strict CSP: no script, no inline style. The lines' colours
// (status.css) are used by nothing else on the page, their legend's
// included (a darker shade), so that the browser test can find the lines
// in a screenshot; status.css must hold no comment,
// which html/template would strip from the hashed <style>.

// Chart geometry, in SVG user units.
const (
	chartWidth  = 150
	bandHeight  = 12
	bandGap     = 3
	chartHeight = 3*bandHeight + 2*bandGap
)

// chart is one timeline as status.html draws it.
type chart struct {
	// Rate, P99 and Errors are the polylines' points attributes.
	Rate, P99, Errors string
	// PeakRate, PeakP99 and TotalErrors label the bands.
	PeakRate, PeakP99, TotalErrors string
	// Label describes the chart for its <title> and screen readers.
	Label string
	// Quiet is set when the ring exists but no request fell in the window.
	Quiet bool
}

// newChart draws points (oldest first, the last minute partly elapsed at
// now); nil when there is no timeline (no traffic since registration).
func newChart(points []orchestrator.TimelinePoint, now time.Time) *chart {
	if len(points) == 0 {
		return nil
	}
	rates := make([]float64, len(points))
	p99s := make([]float64, len(points))
	errs := make([]float64, len(points))
	var peakRate, peakP99 float64
	var total, totalErrs uint64
	for i, p := range points {
		window := time.Minute
		if i == len(points)-1 {
			// The current minute: its rate so far, over at least 10 s, so
			// that one request in its first second is not drawn as a spike.
			window = max(now.Sub(p.Start), 10*time.Second)
		}
		rates[i] = float64(p.Requests) / window.Seconds()
		p99s[i] = p.P99.Std().Seconds()
		errs[i] = float64(p.Errors)
		peakRate, peakP99 = max(peakRate, rates[i]), max(peakP99, p99s[i])
		total += uint64(p.Requests)
		totalErrs += uint64(p.Errors)
	}
	c := &chart{
		Rate:        polyline(rates, 0),
		P99:         polyline(p99s, 1),
		Errors:      polyline(errs, 2),
		PeakRate:    formatRate(peakRate) + " req/s",
		PeakP99:     formatLatency(time.Duration(peakP99 * float64(time.Second))),
		TotalErrors: strconv.FormatUint(totalErrs, 10),
		Quiet:       total == 0,
	}
	c.Label = "last " + strconv.Itoa(orchestrator.TimelineMinutes) + " minutes: peak " + c.PeakRate +
		", p99 up to " + c.PeakP99 + ", " + c.TotalErrors + " errors"
	return c
}

// polyline returns the points attribute of values drawn in band (0 at the
// top), scaled so that the largest value touches the band's top; all zero
// draws a flat line at its bottom.
func polyline(values []float64, band int) string {
	peak := 0.0
	for _, v := range values {
		peak = max(peak, v)
	}
	bottom := float64(band*(bandHeight+bandGap) + bandHeight)
	step := float64(chartWidth) / float64(max(len(values)-1, 1))
	var b strings.Builder
	for i, v := range values {
		y := bottom
		if peak > 0 {
			y -= v / peak * bandHeight
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strconv.FormatFloat(float64(i)*step, 'f', 1, 64))
		b.WriteByte(',')
		b.WriteString(strconv.FormatFloat(y, 'f', 1, 64))
	}
	return b.String()
}
