package models_test

import (
	"context"
	"database/sql"
	"testing"

	"github.com/omnichat/omnichat/models"
	"github.com/omnichat/omnichat/testenv"
)

// Load that moves between a few and all of the pool's connections must not
// close and reopen them: each reopening starts a PostgreSQL backend and
// prepares its statements again (at 300 webhooks/s that was 7–16 new
// backends a second and most of the webhooks' latency).
func TestPoolKeepsItsConnectionsAcrossBursts(t *testing.T) {
	dsn, _ := testenv.NewDatabase(t)
	db, err := models.Open(dsn)
	if err != nil {
		t.Fatal(err)
	}
	const size = 8
	if err := models.SetPoolSize(db, size); err != nil {
		t.Fatal(err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sqlDB.Close() })
	ctx := context.Background()
	for burst := range 5 {
		// Every connection taken at once, then all given back.
		conns := make([]*sql.Conn, size)
		for i := range conns {
			c, err := sqlDB.Conn(ctx)
			if err != nil {
				t.Fatalf("burst %d: %v", burst, err)
			}
			if err := c.PingContext(ctx); err != nil {
				t.Fatalf("burst %d: %v", burst, err)
			}
			conns[i] = c
		}
		for _, c := range conns {
			_ = c.Close()
		}
	}
	st := sqlDB.Stats()
	if st.MaxIdleClosed != 0 || st.OpenConnections != size {
		t.Fatalf("after 5 bursts on %d connections: %d closed for the idle bound, %d open; want 0 closed, %d open", size, st.MaxIdleClosed, st.OpenConnections, size)
	}
}
