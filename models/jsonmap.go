package models

import (
	"database/sql/driver"
	"encoding/json"
	"fmt"
)

// JSONMap is a string map stored as jsonb.
type JSONMap map[string]string

// Value implements driver.Valuer.
func (m JSONMap) Value() (driver.Value, error) {
	if m == nil {
		return "{}", nil
	}
	b, err := json.Marshal(m)
	return string(b), err
}

// Scan implements sql.Scanner.
func (m *JSONMap) Scan(src any) error {
	var b []byte
	switch v := src.(type) {
	case []byte:
		b = v
	case string:
		b = []byte(v)
	case nil:
		*m = JSONMap{}
		return nil
	default:
		return fmt.Errorf("jsonmap: cannot scan %T", src)
	}
	return json.Unmarshal(b, m)
}
