package models

import (
	"context"

	"gorm.io/gorm"
)

// Test hooks for the external test package.

var DeleteUserError = deleteUserError

// BeginRaw opens a transaction on the store's pool, for tests that hold locks.
func (s *Store) BeginRaw(ctx context.Context) (*gorm.DB, error) {
	tx := s.db.WithContext(ctx).Begin()
	return tx, tx.Error
}
