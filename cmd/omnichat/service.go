package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver for migrations
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"

	"github.com/omnichat/omnichat/activities"
	"github.com/omnichat/omnichat/api"
	"github.com/omnichat/omnichat/channels/providers"
	"github.com/omnichat/omnichat/chatcmd"
	"github.com/omnichat/omnichat/config"
	"github.com/omnichat/omnichat/dispatch"
	"github.com/omnichat/omnichat/migrations"
	"github.com/omnichat/omnichat/models"
	"github.com/omnichat/omnichat/worker"
)

func runService(ctx context.Context, cfg config.Config, logger *slog.Logger, withAPI, withWorker bool) error {
	db, err := models.Open(cfg.DatabaseURL)
	if err != nil {
		return err
	}
	store := models.NewStore(db)
	tc, err := client.DialContext(ctx, client.Options{
		HostPort:  cfg.TemporalAddress,
		Namespace: cfg.TemporalNamespace,
		Logger:    tlog.NewStructuredLogger(logger),
	})
	if err != nil {
		return fmt.Errorf("connect to Temporal at %s: %w", cfg.TemporalAddress, err)
	}
	defer tc.Close()
	cmds := chatcmd.New(tc, cfg.TaskQueue)
	registry, err := providers.New(cfg.TelegramAPIURL, cfg.FacebookGraphURL)
	if err != nil {
		return err
	}

	errc := make(chan error, 2)
	if withWorker {
		acts := &activities.Activities{Store: store, Files: store, Providers: registry, Dispatcher: dispatch.New(store, cmds), Kicker: cmds, Logger: logger}
		w := worker.New(tc, acts, worker.Options{TaskQueue: cfg.TaskQueue, StickyCacheSize: cfg.StickyCacheSize, Pollers: cfg.WorkerPollers})
		if err := w.Start(); err != nil {
			return fmt.Errorf("start worker: %w", err)
		}
		defer w.Stop() // waits for running activities, bounded by the worker's stop timeout
		logger.Info("worker started", "task_queue", cfg.TaskQueue, "temporal", cfg.TemporalAddress)
	}
	if withAPI {
		srv := &http.Server{
			Addr: cfg.HTTPAddr,
			Handler: api.New(api.Deps{Store: store, Chats: cmds, Providers: registry, Logger: logger,
				TemporalHealth: func(ctx context.Context) error {
					_, err := tc.CheckHealth(ctx, &client.CheckHealthRequest{})
					return err
				},
				MaxBodyBytes: cfg.MaxBodyBytes, MaxUploadBytes: cfg.MaxUploadBytes, RateLimitPerToken: cfg.RateLimitPerToken, WebhookRateLimit: cfg.WebhookRateLimit}),
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      60 * time.Second,
		}
		go func() {
			if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
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
func adminCreate(ctx context.Context, cfg config.Config, args []string) error {
	fs := flag.NewFlagSet("admin create", flag.ContinueOnError)
	name := fs.String("name", "Administrator", "display name")
	email := fs.String("email", "", "email address (required, unique)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *email == "" {
		return fmt.Errorf("-email is required")
	}
	db, err := models.Open(cfg.DatabaseURL)
	if err != nil {
		return err
	}
	store := models.NewStore(db)
	u := &models.User{Name: *name, Email: strings.ToLower(*email), CanManageChats: true}
	if err := store.CreateUser(ctx, u); err != nil {
		return fmt.Errorf("create admin: %w", err)
	}
	_, token, err := store.CreateToken(ctx, u.ID, "bootstrap")
	if err != nil {
		return err
	}
	fmt.Printf("admin %s (%s) created\nAPI token (shown once, keep it safe):\n%s\n", u.Email, u.ID, token)
	return nil
}
