// Command omnichat runs the omnichat service: the API, the Temporal worker, or both.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
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
                 flags: -email EMAIL [-name NAME] [-password-stdin]
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

func printUsage(w io.Writer) {
	fmt.Fprint(w, usage)
	for _, v := range config.Vars {
		fmt.Fprintf(w, "  %-32s %s (default %q)\n", v.Name, v.Description, v.Default)
	}
}

// commandHelp is what "omnichat <command> -h" prints for the commands that
// take no flags; they must never start on a request for help.
var commandHelp = map[string]string{
	"all":     "omnichat all: run the API and the worker in one process (what \"make run\" starts). No flags: settings come from the environment and the env file (omnichat -h lists them).",
	"serve":   "omnichat serve: run the API only (webhooks, agents, admins, the web panel). No flags: settings come from the environment and the env file (omnichat -h lists them).",
	"worker":  "omnichat worker: run the Temporal worker only. No flags: settings come from the environment and the env file (omnichat -h lists them).",
	"migrate": "omnichat migrate: create the database named by OMNICHAT_DATABASE_URL if missing and apply every migration. No flags.",
	"config":  "omnichat config [NAME]: print every setting in effect as NAME=value (environment, then the env file, then defaults), or the value of one.",
	"admin":   adminUsage,
}

const adminUsage = "usage: omnichat admin create -email EMAIL [-name NAME] [-password-stdin]"

func isHelp(arg string) bool {
	switch arg {
	case "-h", "-help", "--help", "help":
		return true
	}
	return false
}

func main() {
	if len(os.Args) < 2 {
		printUsage(os.Stderr)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1], os.Args[2:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "omnichat:", err)
		if errors.Is(err, errUnknownCommand) {
			fmt.Fprintln(os.Stderr)
			printUsage(os.Stderr)
			os.Exit(2)
		}
		os.Exit(1)
	}
}

var errUnknownCommand = errors.New("unknown command")

func run(ctx context.Context, cmd string, args []string) error {
	if isHelp(cmd) {
		printUsage(os.Stdout)
		return nil
	}
	if help, ok := commandHelp[cmd]; ok && len(args) > 0 && isHelp(args[0]) {
		fmt.Println(help)
		return nil
	}
	switch cmd {
	case "bench":
		return runBench(ctx, args)
	case "config":
		return printConfig(args)
	case "all", "serve", "worker", "migrate":
		if len(args) > 0 {
			return fmt.Errorf("%s takes no arguments (got %q); omnichat %s -h", cmd, args[0], cmd)
		}
	case "admin":
		if len(args) == 0 || args[0] != "create" {
			return errors.New(adminUsage)
		}
	default:
		return fmt.Errorf("%w %q", errUnknownCommand, cmd)
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
	default: // admin create
		return adminCreate(ctx, cfg, logger, args[1:])
	}
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
