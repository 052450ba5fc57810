// Command omnichat runs the omnichat service: the API, the Temporal worker, or both.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/omnichat/omnichat/config"
)

const usage = `omnichat — messenger conversations for support teams, on Temporal and PostgreSQL.

Usage:
  omnichat <command> [flags]

Commands:
  all            run the API and the worker in one process (what "make run" starts)
  serve          run the API only
  worker         run the Temporal worker only
  migrate        create the database if missing and apply migrations
  admin create   create an admin user and print their first API token
                 flags: -name NAME -email EMAIL [-password-stdin]
                 (-password-stdin: the first line of stdin becomes the
                 user's web panel password)
  config [NAME]  print the settings in effect (environment, then the env
                 file, then defaults), or the value of one
  bench          load-test a running stack through the API channel webhook
                 (see "omnichat bench -h"); "bench reads" times the agent
                 panel's reads over a seeded database, "bench soak" keeps
                 many chats open on one worker (see "omnichat bench soak -h")
  help           show this help

Configuration comes from environment variables, and from the env file
(.env in the working directory) for those the environment does not set:
`

func printUsage() {
	fmt.Fprint(os.Stderr, usage)
	for _, v := range config.Vars {
		fmt.Fprintf(os.Stderr, "  %-30s %s (default %q)\n", v.Name, v.Description, v.Default)
	}
}

func main() {
	if len(os.Args) < 2 {
		printUsage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1], os.Args[2:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "omnichat:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cmd string, args []string) error {
	switch cmd {
	case "help", "-h", "--help":
		printUsage()
		return nil
	case "bench":
		return runBench(ctx, args)
	case "config":
		return printConfig(args)
	}
	cfg, err := config.Load()
	if err != nil {
		return err
	}
	logger := cfg.Logger()
	switch cmd {
	case "all":
		return runService(ctx, cfg, logger, true, true)
	case "serve":
		return runService(ctx, cfg, logger, true, false)
	case "worker":
		return runService(ctx, cfg, logger, false, true)
	case "migrate":
		return migrate(ctx, cfg, logger)
	case "admin":
		if len(args) == 0 || args[0] != "create" {
			return fmt.Errorf("usage: omnichat admin create -name NAME -email EMAIL [-password-stdin]")
		}
		return adminCreate(ctx, cfg, logger, args[1:])
	}
	printUsage()
	return fmt.Errorf("unknown command %q", cmd)
}

// printConfig prints the settings in effect, or one setting's value.
func printConfig(args []string) error {
	vars, err := config.Effective()
	if err != nil {
		return err
	}
	for _, v := range vars {
		switch {
		case len(args) == 0:
			fmt.Printf("%s=%s\n", v.Name, v.Default)
		case args[0] == v.Name:
			fmt.Println(v.Default)
			return nil
		}
	}
	if len(args) > 0 {
		return fmt.Errorf("no setting %s; omnichat config lists them", args[0])
	}
	return nil
}
