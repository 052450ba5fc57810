package main

import (
	"context"
	"fmt"
)

func runBenchSoak(ctx context.Context, args []string) error {
	return fmt.Errorf("not yet")
}
