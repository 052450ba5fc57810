package api

// Test hooks for the external test package.

const MaxLimiters = maxLimiters

type TestLimiters struct{ l *limiters }

func NewLimitersForTest(rps float64) TestLimiters { return TestLimiters{&limiters{rps: rps}} }
func (t TestLimiters) Allow(key string) bool      { return t.l.allow(key) }
func (t TestLimiters) Len() int                   { return len(t.l.m) }

// TraceRequests is the server-span middleware.
var TraceRequests = traceRequests
