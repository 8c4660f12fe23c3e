// Package outlier is passive health per target, Envoy's consecutive-failure
// outlier detection: a Detector watches the outcomes of one endpoint's
// requests to each of its targets and ejects (takes out of balancing) a
// target that failed consecutive_failures times in a row.
//
// The rules, Envoy's unless said otherwise:
//
//   - A success resets the target's count of failures in a row. Outcomes
//     recorded while the target is ejected (requests sent before the
//     ejection that end after it) are ignored.
//   - The n-th ejection lasts n × base_ejection_time, capped at
//     max_ejection_time; once the cap is reached the multiplier stops
//     growing.
//   - The multiplier decays: each full base_ejection_time a target stays in
//     service after it returned takes one off it, so a target that failed
//     once an hour ago is not punished as a flapping one. (Envoy decrements
//     it once per healthy `interval`; this package has no interval timer,
//     so it uses base_ejection_time as the period and applies the decay
//     lazily, at the next ejection.)
//   - At most MaxEjected(targets, max_ejection_percent) targets are ejected
//     at once, at least one. A target refused by that cap stays at its
//     threshold: its next failure tries again, so it is ejected as soon as
//     another target has returned.
//   - An ejected target returns when its time is up. Nothing runs for that:
//     Ejected sees the time has passed and returns it (lazily), and an
//     ejection first returns every target whose time is up, so the cap
//     counts only targets really out. No goroutine, no timer.
//
// The hot path, Record and Ejected, allocates nothing and takes no lock
// except when a target is ejected or returns, when it takes the
// Detector's one mutex.
package outlier

import (
	"sync"
	"sync/atomic"
	"time"
)

// Detector is one endpoint's outlier detection over a fixed number of
// targets, addressed by index 0..n-1 (the endpoint's target order). It is
// safe for concurrent use and must not be copied.
type Detector struct {
	threshold  int64 // consecutive failures that eject; 0: detection off
	base       int64 // base ejection time, ns
	maxTime    int64 // max ejection time, ns
	maxMult    int64 // the multiplier at which maxTime is reached
	maxEjected int
	now        func() time.Time
	epoch      time.Time // times are kept as ns since epoch: one int64 each

	overflow atomic.Uint64 // ejections refused by max_ejection_percent

	mu      sync.Mutex
	active  int // targets ejected now; guarded by mu
	targets []target
}

// target is one target's state. The atomics are read and written on the
// hot path; the plain fields only under Detector.mu. Padded to a cache line
// so that targets busy on different cores do not slow each other down.
type target struct {
	consecutive atomic.Int64
	ejected     atomic.Bool
	until       atomic.Int64  // when the ejection ends, ns since epoch
	ejections   atomic.Uint64 // ejections ever, for metrics

	multiplier int64 // guarded by mu
	returnedAt int64 // when the last ejection ended; guarded by mu
	_          [16]byte
}

// New returns a detector for an endpoint of targets targets under cfg,
// which must be valid (the error is Validate's). now is the clock, nil for
// time.Now; tests pass a fake one. A cfg with detection off (0
// consecutive_failures) gives a detector that records nothing and ejects
// nothing and keeps no per-target state.
func New(cfg Config, targets int, now func() time.Time) (*Detector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if now == nil {
		now = time.Now
	}
	cfg = cfg.WithDefaults()
	d := &Detector{
		threshold:  int64(*cfg.ConsecutiveFailures),
		base:       int64(cfg.BaseEjectionTime),
		maxTime:    int64(cfg.MaxEjectionTime),
		maxEjected: MaxEjected(targets, cfg.MaxEjectionPercent),
		now:        now,
		epoch:      now(),
	}
	d.maxMult = (d.maxTime + d.base - 1) / d.base
	if d.threshold > 0 {
		d.targets = make([]target, targets)
	}
	return d, nil
}

// Enabled reports whether the detector ejects anything.
func (d *Detector) Enabled() bool { return d.threshold > 0 }

// MaxEjected is how many targets may be ejected at once.
func (d *Detector) MaxEjected() int { return d.maxEjected }

// Record counts the outcome of one request to target i: failed is a
// failure (what counts as one is the caller's rule: a transport error, a
// timeout, a 5xx). The failure that makes consecutive_failures in a row
// ejects the target, unless max_ejection_percent forbids it. It does not
// allocate; it takes the detector's lock only for an ejection.
func (d *Detector) Record(i int, failed bool) {
	if d.threshold == 0 {
		return
	}
	t := &d.targets[i]
	if !failed {
		// Load first: a healthy target's successes then only read the
		// cache line, and do not bounce it between cores.
		if t.consecutive.Load() != 0 {
			t.consecutive.Store(0)
		}
		return
	}
	if t.ejected.Load() || t.consecutive.Add(1) < d.threshold {
		return
	}
	d.eject(i)
}

// Ejected reports whether target i is out of balancing at now. A target
// whose ejection time is up returns here, at the first look after it. It
// does not allocate; it takes the detector's lock only to return a target.
func (d *Detector) Ejected(i int, now time.Time) bool {
	if d.threshold == 0 {
		return false
	}
	t := &d.targets[i]
	if !t.ejected.Load() {
		return false
	}
	at := d.since(now)
	if at < t.until.Load() {
		return true
	}
	d.mu.Lock()
	d.returnIfDue(t, at)
	d.mu.Unlock()
	return false
}

// EjectedNow is Ejected at the detector's clock's now, read only when
// target i is ejected: the common case, a target in service, costs one
// atomic load.
func (d *Detector) EjectedNow(i int) bool {
	if d.threshold == 0 || !d.targets[i].ejected.Load() {
		return false
	}
	return d.Ejected(i, d.now())
}

// since is now as ns since the detector's epoch; with time.Now's monotonic
// reading a wall-clock step does not shorten or stretch an ejection.
func (d *Detector) since(now time.Time) int64 { return int64(now.Sub(d.epoch)) }

// eject ejects target i if it still should be: the lock is taken after
// the failure was counted, and another goroutine may have ejected it or a
// success reset it in between.
func (d *Detector) eject(i int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	at := d.since(d.now())
	for j := range d.targets {
		d.returnIfDue(&d.targets[j], at)
	}
	t := &d.targets[i]
	if t.ejected.Load() || t.consecutive.Load() < d.threshold {
		return
	}
	if d.active >= d.maxEjected {
		d.overflow.Add(1)
		// Stay at the threshold, not above it: the next failure tries
		// again, and the count cannot grow without bound.
		t.consecutive.Store(d.threshold)
		return
	}
	m := t.multiplier
	if m > 0 && at > t.returnedAt {
		m = max(m-(at-t.returnedAt)/d.base, 0)
	}
	m = min(m+1, d.maxMult)
	t.multiplier = m
	t.until.Store(at + min(d.base*m, d.maxTime))
	t.consecutive.Store(0)
	t.ejections.Add(1)
	t.ejected.Store(true) // last: a reader that sees it also sees until
	d.active++
}

// returnIfDue returns t to balancing if it is ejected and its time is up
// at at. The caller holds d.mu.
func (d *Detector) returnIfDue(t *target, at int64) {
	if !t.ejected.Load() {
		return
	}
	if until := t.until.Load(); at >= until {
		t.ejected.Store(false)
		t.returnedAt = until // it was due then, however late it was seen
		d.active--
	}
}

// Ejections is how many times target i was ejected since the detector was
// built: a counter for metrics. It does not allocate or lock.
func (d *Detector) Ejections(i int) uint64 {
	if d.threshold == 0 {
		return 0
	}
	return d.targets[i].ejections.Load()
}

// Overflows is how many ejections max_ejection_percent refused (Envoy's
// ejections_overflow): a counter for metrics.
func (d *Detector) Overflows() uint64 { return d.overflow.Load() }

// TargetState is one target's outlier state, for the admin view.
type TargetState struct {
	// Ejected: the target is out of balancing until Until.
	Ejected bool
	Until   time.Time
	// ConsecutiveFailures is the current run of failures.
	ConsecutiveFailures int
	// Ejections is how many times it was ejected since the detector was built.
	Ejections uint64
	// Multiplier is the ejection multiplier after decay: an ejected
	// target is out for Multiplier × base (capped); a target in service
	// is ejected next for (Multiplier+1) × base (capped).
	Multiplier int
}

// State returns target i's state at now, returning it first if its time is
// up. It takes the detector's lock: it is for views, not for the hot path.
func (d *Detector) State(i int, now time.Time) TargetState {
	if d.threshold == 0 {
		return TargetState{}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	t := &d.targets[i]
	at := d.since(now)
	d.returnIfDue(t, at)
	s := TargetState{
		Ejected:             t.ejected.Load(),
		ConsecutiveFailures: int(t.consecutive.Load()),
		Ejections:           t.ejections.Load(),
	}
	if s.Ejected {
		s.Until = d.epoch.Add(time.Duration(t.until.Load()))
		s.Multiplier = int(t.multiplier)
	} else if t.multiplier > 0 && at > t.returnedAt {
		s.Multiplier = int(max(t.multiplier-(at-t.returnedAt)/d.base, 0))
	} else {
		s.Multiplier = int(t.multiplier)
	}
	return s
}

// Inherit carries targets' state over from old, the detector the endpoint
// had before a config change: target i takes the state of old's target
// from[i], or starts fresh where from[i] is negative (a new target). An
// unchanged target stays ejected for the rest of its time and keeps its
// multiplier and run of failures, so a reload is no way out of an
// ejection. Ejections past d's max_ejection_percent are kept too: they end
// on their own. Call it before d is shared.
func (d *Detector) Inherit(old *Detector, from []int) {
	if d.threshold == 0 || old == nil || old.threshold == 0 {
		return
	}
	old.mu.Lock()
	defer old.mu.Unlock()
	shift := int64(old.epoch.Sub(d.epoch)) // old time + shift = d's time
	for i := range d.targets {
		if i >= len(from) || from[i] < 0 || from[i] >= len(old.targets) {
			continue
		}
		o, t := &old.targets[from[i]], &d.targets[i]
		t.consecutive.Store(min(o.consecutive.Load(), d.threshold))
		t.ejections.Store(o.ejections.Load())
		t.multiplier = min(o.multiplier, d.maxMult)
		t.returnedAt = o.returnedAt + shift
		if o.ejected.Load() {
			t.until.Store(o.until.Load() + shift)
			t.ejected.Store(true)
			d.active++
		}
	}
}
