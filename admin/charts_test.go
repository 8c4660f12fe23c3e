package admin

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/orchestrator-go/orchestrator"
)

// The current minute's rate is taken over at least 10 s: one request a
// second into the minute reads 0.1 req/s, not 1.
func TestChartRateOfTheCurrentMinute(t *testing.T) {
	start := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	pts := make([]orchestrator.TimelinePoint, orchestrator.TimelineMinutes)
	for i := range pts {
		pts[i].Start = start.Add(time.Duration(i-len(pts)+1) * time.Minute)
	}
	pts[len(pts)-1].Requests = 1
	c := newChart(pts, start.Add(time.Second))
	assert.Equal(t, "0.10 req/s", c.PeakRate)
	pts[len(pts)-2].Requests = 60 // a full minute before: 1 req/s
	c = newChart(pts, start.Add(30*time.Second))
	assert.Equal(t, "1.00 req/s", c.PeakRate)
	assert.False(t, c.Quiet)
	assert.Nil(t, newChart(nil, start), "no timeline, no chart")
}
