package main

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver for migrations

	"github.com/omnichat/omnichat/app"
	"github.com/omnichat/omnichat/config"
	"github.com/omnichat/omnichat/migrations"
	"github.com/omnichat/omnichat/service"
)

func runService(ctx context.Context, cfg config.Config, logger *slog.Logger, withAPI, withWorker bool) error {
	a, err := app.New(cfg, logger)
	if err != nil {
		return err
	}
	defer a.Close()

	errc := make(chan error, 2)
	if cfg.MetricsAddr != "" {
		// Its own listener: scrapers reach it on an internal address, the
		// API's clients never do.
		msrv := &http.Server{Addr: cfg.MetricsAddr, Handler: a.MetricsHandler(), ReadHeaderTimeout: 10 * time.Second,
			WriteTimeout: 30 * time.Second}
		// Bound before anything is said about it: a taken port fails here.
		ml, err := net.Listen("tcp", cfg.MetricsAddr)
		if err != nil {
			return fmt.Errorf("metrics listener: %w", err)
		}
		go func() {
			if err := msrv.Serve(ml); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("metrics listener: %w", err)
			}
		}()
		logger.Info("metrics listening", "addr", cfg.MetricsAddr, "path", "/metrics")
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = msrv.Shutdown(sctx)
		}()
	}
	if withAPI {
		srv := &http.Server{
			Addr:              cfg.HTTPAddr,
			Handler:           a.Handler(),
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      60 * time.Second,
		}
		// Event streams never end by themselves: they end when shutdown starts.
		srv.RegisterOnShutdown(a.Services.Events.Close)
		l, err := net.Listen("tcp", cfg.HTTPAddr)
		if err != nil {
			return fmt.Errorf("API listener: %w", err)
		}
		go func() {
			if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		}()
		logger.Info("API listening", "addr", cfg.HTTPAddr, "openapi", "/openapi.yaml")
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
			defer cancel()
			if err := srv.Shutdown(sctx); err != nil {
				logger.Error("API shutdown", "error", err)
			}
		}()
	}
	if withWorker {
		// Waits for PostgreSQL and Temporal; the API (when it runs) answers 503 meanwhile.
		w, err := a.StartWorker(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		defer w.Stop() // waits for running activities, bounded by the shutdown timeout
		logger.Info("worker started", "task_queue", cfg.TaskQueue, "temporal", cfg.TemporalAddress)
	}
	select {
	case <-ctx.Done():
		logger.Info("shutting down")
		return nil
	case err := <-errc:
		return err
	}
}

// migrate creates the database when missing and applies every migration.
func migrate(ctx context.Context, cfg config.Config, logger *slog.Logger) error {
	if err := ensureDatabase(ctx, cfg.DatabaseURL); err != nil {
		return err
	}
	db, err := sql.Open("pgx", cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := migrations.Up(ctx, db); err != nil {
		return err
	}
	logger.Info("database migrated")
	return nil
}

// ensureDatabase connects to the server's maintenance database and creates
// the configured database if it does not exist.
func ensureDatabase(ctx context.Context, dsn string) error {
	u, err := url.Parse(dsn)
	if err != nil || u.Path == "" || u.Path == "/" {
		return fmt.Errorf("OMNICHAT_DATABASE_URL must be a postgres:// URL naming a database")
	}
	name := strings.TrimPrefix(u.Path, "/")
	admin := *u
	admin.Path = "/postgres"
	conn, err := pgx.Connect(ctx, admin.String())
	if err != nil {
		return fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return fmt.Errorf("look up database: %w", err)
	}
	if exists {
		return nil
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}

// adminCreate is the explicit bootstrap of the first admin: there is no default password.
func adminCreate(ctx context.Context, cfg config.Config, logger *slog.Logger, args []string) error {
	fs := flag.NewFlagSet("admin create", flag.ContinueOnError)
	name := fs.String("name", "Administrator", "display name")
	email := fs.String("email", "", "email address (required, unique)")
	passwordStdin := fs.Bool("password-stdin", false, "read a web panel password from the first line of standard input")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *email == "" {
		return fmt.Errorf("-email is required")
	}
	password := ""
	if *passwordStdin {
		line, err := bufio.NewReader(os.Stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read password: %w", err)
		}
		if password = strings.TrimRight(line, "\r\n"); len(password) < service.MinPasswordLength {
			return fmt.Errorf("the password must be at least %d characters", service.MinPasswordLength)
		}
	}
	a, err := app.New(cfg, logger)
	if err != nil {
		return err
	}
	defer a.Close()
	users := a.Services.Users
	u, err := users.Create(ctx, service.NewUser{Name: *name, Email: *email, CanManageChats: true})
	if err != nil {
		return fmt.Errorf("create admin in %s: %w", redactedURL(cfg.DatabaseURL), err)
	}
	_, token, err := users.CreateToken(ctx, u.ID, "bootstrap")
	if err != nil {
		return err
	}
	if password != "" {
		if err := a.Services.Sessions.SetPassword(ctx, u.ID, password); err != nil {
			return err
		}
		fmt.Printf("web panel password set: sign in on the panel at / of the API (%s)\n", cfg.HTTPAddr)
	}
	fmt.Printf("admin %s (%s) created in %s\nAPI token (shown once, keep it safe):\n%s\n", u.Email, u.ID, redactedURL(cfg.DatabaseURL), token)
	return nil
}

// redactedURL names a database without its password.
func redactedURL(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "the configured database"
	}
	return u.Redacted()
}
