package api

import "time"

// Test hooks for the external test package.

const MaxLimiters = maxLimiters
const FailedSignInBurst = failedSignInBurst

type TestLimiters struct{ l *limiters }

func NewLimitersForTest(rps float64) TestLimiters { return TestLimiters{&limiters{rps: rps}} }
func (t TestLimiters) Allow(key string) bool      { return t.l.allow(key) }
func (t TestLimiters) Len() int                   { return len(t.l.m) }

type TestSignInFailures struct{ f *signInFailures }

func NewSignInFailuresForTest() TestSignInFailures { return TestSignInFailures{&signInFailures{}} }
func (t TestSignInFailures) Reserve(key string, now time.Time) bool {
	_, ok := t.f.reserve(key, now)
	return ok
}
func (t TestSignInFailures) Has(key string) bool { _, ok := t.f.m[key]; return ok }
func (t TestSignInFailures) Len() int            { return len(t.f.m) }

// TraceRequests is the server-span middleware.
var TraceRequests = traceRequests
