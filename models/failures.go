package models

import "context"

// CountProviderFailure records one more failure of a provider for an item
// (a send, a download, ...) and returns how many there were. Only a provider's
// failures are counted: when the database is away this fails too, and the
// attempt is not counted.
func (s *Store) CountProviderFailure(ctx context.Context, key, reason string) (int, error) {
	var n int
	err := s.db.WithContext(ctx).Raw(`INSERT INTO provider_failures (key, attempts, last_error) VALUES (?, 1, ?)
		ON CONFLICT (key) DO UPDATE SET attempts = provider_failures.attempts + 1, last_error = excluded.last_error, updated_at = now()
		RETURNING attempts`, key, reason).Scan(&n).Error
	return n, err
}

// ForgetProviderFailures drops an item's failure count once it succeeded.
func (s *Store) ForgetProviderFailures(ctx context.Context, key string) error {
	return s.db.WithContext(ctx).Exec(`DELETE FROM provider_failures WHERE key = ?`, key).Error
}
