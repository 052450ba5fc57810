// Package faults holds omnichat's fault suite: the built binary runs against
// a PostgreSQL and a Temporal dev server of the suite's own while signed
// webhook messages stream in, and one fault at a time is injected (kill -9 of
// omnichat, of the worker, of Temporal; PostgreSQL stopped; the worker
// paused). After each, every message that was answered 2xx must be stored
// exactly once. The tests run only with OMNICHAT_FAULTS=1 (make test-faults):
// they take minutes and start processes of their own.
package faults
