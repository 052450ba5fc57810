package models

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/omnichat/omnichat/domain"
)

// Store is the data access of omnichat; every call takes the caller's context.
type Store struct {
	db *gorm.DB
}

// Open prepares a connection pool to PostgreSQL. It does not connect: a
// process started while the database is away comes up and waits for it.
func Open(dsn string) (*gorm.DB, error) {
	db, err := gorm.Open(postgres.Open(dsn), &gorm.Config{
		Logger:               logger.Default.LogMode(logger.Silent),
		TranslateError:       true,
		DisableAutomaticPing: true,
		NowFunc:              func() time.Time { return time.Now().UTC() },
	})
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	setPoolSize(sqlDB, 20)
	sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	for _, p := range []interface {
		Register(name string, fn func(*gorm.DB)) error
	}{db.Callback().Create(), db.Callback().Query(), db.Callback().Update(), db.Callback().Delete(), db.Callback().Row(), db.Callback().Raw()} {
		if err := p.Register("omnichat:unavailable", func(tx *gorm.DB) { tx.Error = markRefusedData(markUnavailable(tx.Error)) }); err != nil {
			return nil, fmt.Errorf("open database: %w", err)
		}
	}
	return db, nil
}

// SetPoolSize bounds the connections the pool opens (20 unless set).
func SetPoolSize(db *gorm.DB, maxConns int) error {
	sqlDB, err := db.DB()
	if err != nil {
		return err
	}
	setPoolSize(sqlDB, maxConns)
	return nil
}

func setPoolSize(sqlDB *sql.DB, maxConns int) {
	sqlDB.SetMaxOpenConns(maxConns)
	// Every connection may stay idle (until ConnMaxIdleTime): a pool that
	// keeps fewer closes and reopens connections as the load moves around
	// its idle bound, and each reopening costs a PostgreSQL backend's start
	// and its statements prepared again.
	sqlDB.SetMaxIdleConns(maxConns)
}

// NewStore wraps a GORM handle.
func NewStore(db *gorm.DB) *Store { return &Store{db: db} }

// Ping checks the database answers.
func (s *Store) Ping(ctx context.Context) error {
	sqlDB, err := s.db.DB()
	if err != nil {
		return err
	}
	return markUnavailable(sqlDB.PingContext(ctx))
}

// Tx runs fn in one transaction: every call fn makes on tx commits together,
// or none does. Inside a transaction, Tx nests as a savepoint.
func (s *Store) Tx(ctx context.Context, fn func(tx *Store) error) error {
	return s.tx(ctx, func(tx *gorm.DB) error { return fn(&Store{db: tx}) })
}

// tx is the one way this package opens a transaction.
func (s *Store) tx(ctx context.Context, fn func(tx *gorm.DB) error) error {
	return markUnavailable(s.db.WithContext(ctx).Transaction(fn))
}

// markUnavailable wraps the errors that mean "the database did not answer"
// in domain.ErrUnavailable, so callers can tell an outage (retry later) from
// a refusal.
func markUnavailable(err error) error {
	if err == nil || errors.Is(err, domain.ErrUnavailable) || !connectionFailure(err) {
		return err
	}
	return fmt.Errorf("%w: %w", domain.ErrUnavailable, err)
}

// markRefusedData wraps PostgreSQL's data exceptions (class 22: a value it
// cannot store, such as a NUL in text) in domain.ErrInvalid: retrying cannot
// change them, so work that hits one must fail at once instead of blocking
// its chat behind retries that never succeed.
func markRefusedData(err error) error {
	var pg *pgconn.PgError
	if err == nil || errors.Is(err, domain.ErrInvalid) || !errors.As(err, &pg) || !strings.HasPrefix(pg.Code, "22") {
		return err
	}
	return fmt.Errorf("the database refused the data (%s): %w", pg.Message, domain.ErrInvalid)
}

func connectionFailure(err error) bool {
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		// 08: connection exceptions; 57P0x: shutdown, crash recovery; 53300: too many connections.
		return strings.HasPrefix(pg.Code, "08") || strings.HasPrefix(pg.Code, "57P0") || pg.Code == "53300"
	}
	var connect *pgconn.ConnectError
	var netErr net.Error
	return errors.As(err, &connect) || errors.As(err, &netErr) || pgconn.Timeout(err) || pgconn.SafeToRetry(err) ||
		errors.Is(err, pgconn.ErrConnClosed) || errors.Is(err, driver.ErrBadConn) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, context.DeadlineExceeded)
}

func notFound(err error, what string) error {
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return fmt.Errorf("%s: %w", what, domain.ErrNotFound)
	}
	return err
}

// conflictOn reports a unique or foreign-key violation as a conflict.
func conflictOn(err error, what string) error {
	if errors.Is(err, gorm.ErrDuplicatedKey) {
		return fmt.Errorf("%s already exists: %w", what, domain.ErrConflict)
	}
	if errors.Is(err, gorm.ErrForeignKeyViolated) {
		return fmt.Errorf("%s is referenced elsewhere or refers to something missing: %w", what, domain.ErrConflict)
	}
	var pg *pgconn.PgError
	if errors.As(err, &pg) && strings.HasPrefix(pg.Code, "23") {
		return fmt.Errorf("%s: %s: %w", what, pg.Message, domain.ErrConflict)
	}
	return err
}

// deleteRows deletes what the condition selects, ErrNotFound when nothing.
func (s *Store) deleteRows(ctx context.Context, model any, what, query string, args ...any) error {
	res := s.db.WithContext(ctx).Where(query, args...).Delete(model)
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("%s: %w", what, domain.ErrNotFound)
	}
	return nil
}

// Raw runs a read-only query into dst; tests and tools use it to check invariants.
func (s *Store) Raw(ctx context.Context, dst any, query string, args ...any) error {
	return s.db.WithContext(ctx).Raw(query, args...).Scan(dst).Error
}

// Close releases the connection pool.
func (s *Store) Close() {
	if sqlDB, err := s.db.DB(); err == nil {
		_ = sqlDB.Close()
	}
}
