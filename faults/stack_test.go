package faults

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"

	"github.com/omnichat/omnichat/testenv"
)

// freePort asks the kernel for a port nobody listens on.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// waitFor polls cond until it holds; it fails the test at the deadline.
func waitFor(t *testing.T, within time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s: %v", within, what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// postgres is a PostgreSQL server of the suite's own: its own data
// directory and port, so it can be stopped without touching anyone else's.
type postgres struct {
	t    *testing.T
	bin  string
	data string
	dir  string
	port int
	cred *syscall.Credential
}

// pgBin finds the newest installed PostgreSQL's programs.
func pgBin(t *testing.T) string {
	t.Helper()
	if dir := os.Getenv("OMNICHAT_FAULTS_PGBIN"); dir != "" {
		return dir
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return vi < vj
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "pg_ctl")); err == nil {
			return dirs[i]
		}
	}
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		return filepath.Dir(p)
	}
	t.Fatal("no PostgreSQL programs found (/usr/lib/postgresql/*/bin or pg_ctl on PATH; OMNICHAT_FAULTS_PGBIN names another folder)")
	return ""
}

// startPostgres initialises a cluster under dir and starts it. PostgreSQL
// refuses to run as root, so as root the server runs as the postgres user.
func startPostgres(t *testing.T, dir string) *postgres {
	t.Helper()
	pg := &postgres{t: t, bin: pgBin(t), dir: dir, data: filepath.Join(dir, "pgdata"), port: freePort(t)}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root needs a postgres user to run PostgreSQL as: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		pg.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	if err := os.MkdirAll(pg.data, 0o700); err != nil {
		t.Fatal(err)
	}
	if pg.cred != nil {
		if err := os.Chown(pg.data, int(pg.cred.Uid), int(pg.cred.Gid)); err != nil {
			t.Fatal(err)
		}
	}
	pg.run("initdb", "-D", pg.data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
	pg.Start()
	t.Cleanup(func() { _ = pg.ctl("stop", "-m", "immediate", "-w") })
	return pg
}

func (pg *postgres) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(pg.bin, name), args...)
	cmd.Dir = pg.dir
	if pg.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: pg.cred}
	}
	return cmd
}

func (pg *postgres) run(name string, args ...string) {
	pg.t.Helper()
	if out, err := pg.command(name, args...).CombinedOutput(); err != nil {
		pg.t.Fatalf("%s: %v\n%s", name, err, out)
	}
}

func (pg *postgres) ctl(args ...string) error {
	full := append([]string{"-D", pg.data}, args...)
	out, err := pg.command("pg_ctl", full...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_ctl %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

// Start starts the server on its port and waits until it accepts connections.
func (pg *postgres) Start() {
	pg.t.Helper()
	opts := fmt.Sprintf("-p %d -c listen_addresses=127.0.0.1 -c unix_socket_directories=%s -c fsync=off -c max_connections=300",
		pg.port, pg.data)
	if err := pg.ctl("start", "-w", "-t", "60", "-l", filepath.Join(pg.data, "server.log"), "-o", opts); err != nil {
		pg.t.Fatal(err)
	}
}

// StopImmediate stops the server the way a crash would: no checkpoint,
// every connection cut.
func (pg *postgres) StopImmediate() {
	pg.t.Helper()
	if err := pg.ctl("stop", "-m", "immediate", "-w"); err != nil {
		pg.t.Fatal(err)
	}
}

// URL is the connection URL of a database on this server.
func (pg *postgres) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", pg.port, db)
}

// temporalServer is a Temporal dev server keeping its state in a file, so it
// can be killed and started again on the same state.
type temporalServer struct {
	t       *testing.T
	cli     string
	state   string
	log     string
	port    int
	ports   []string
	cmd     *exec.Cmd
	exited  chan struct{}
	address string
}

func startTemporal(t *testing.T, dir string) *temporalServer {
	t.Helper()
	cli, err := testenv.CLIPath()
	if err != nil {
		t.Fatal(err)
	}
	ts := &temporalServer{t: t, cli: cli, state: filepath.Join(dir, "temporal.db"), log: filepath.Join(dir, "temporal.log"), port: freePort(t)}
	ts.ports = []string{"--http-port", strconv.Itoa(freePort(t)), "--metrics-port", strconv.Itoa(freePort(t))}
	ts.address = fmt.Sprintf("127.0.0.1:%d", ts.port)
	t.Cleanup(ts.Kill)
	ts.Start()
	return ts
}

// Start runs the dev server on the state file and waits until it answers.
func (ts *temporalServer) Start() {
	ts.t.Helper()
	logf, err := os.OpenFile(ts.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		ts.t.Fatal(err)
	}
	args := append([]string{"server", "start-dev", "--headless", "--ip", "127.0.0.1", "--port", strconv.Itoa(ts.port),
		"--db-filename", ts.state, "--log-level", "warn"}, ts.ports...)
	ts.cmd = exec.Command(ts.cli, args...)
	ts.cmd.Stdout, ts.cmd.Stderr = logf, logf
	if err := ts.cmd.Start(); err != nil {
		ts.t.Fatal(err)
	}
	ts.exited = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}, f *os.File) {
		_ = cmd.Wait()
		_ = f.Close()
		close(done)
	}(ts.cmd, ts.exited, logf)
	waitFor(ts.t, 60*time.Second, "the Temporal dev server answers", func() error {
		select {
		case <-ts.exited:
			return errors.New("it exited; see " + ts.log)
		default:
		}
		c, err := ts.Dial()
		if err != nil {
			return err
		}
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err = c.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: "default"})
		return err
	})
}

// Dial connects a client to the dev server.
func (ts *temporalServer) Dial() (client.Client, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return client.DialContext(ctx, client.Options{HostPort: ts.address, Namespace: "default",
		Logger: tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))})
}

// Kill is kill -9 of the dev server.
func (ts *temporalServer) Kill() {
	if ts.cmd == nil || ts.cmd.Process == nil {
		return
	}
	_ = ts.cmd.Process.Kill()
	<-ts.exited
	ts.cmd = nil
}

// omnichat runs the built binary with the suite's settings.
type omnichat struct {
	t    *testing.T
	bin  string
	dir  string
	env  []string
	addr string
}

func (o *omnichat) command(args ...string) *exec.Cmd {
	cmd := exec.Command(o.bin, args...)
	cmd.Dir = o.dir
	cmd.Env = o.env
	return cmd
}

// run runs a short command (migrate, admin create) and returns its output.
func (o *omnichat) run(args ...string) string {
	o.t.Helper()
	var out, errb bytes.Buffer
	cmd := o.command(args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		o.t.Fatalf("omnichat %s: %v\n%s%s", strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String()
}

// proc is one long-running omnichat process (all, serve or worker).
type proc struct {
	name   string
	cmd    *exec.Cmd
	exited chan struct{}
}

// start starts `omnichat <mode>`, its output appended to <mode>.log.
func (o *omnichat) start(mode string) *proc {
	o.t.Helper()
	logf, err := os.OpenFile(filepath.Join(o.dir, mode+".log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		o.t.Fatal(err)
	}
	fmt.Fprintf(logf, "---- started %s\n", time.Now().Format(time.RFC3339Nano))
	p := &proc{name: mode, cmd: o.command(mode), exited: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		o.t.Fatal(err)
	}
	go func() {
		_ = p.cmd.Wait()
		_ = logf.Close()
		close(p.exited)
	}()
	o.t.Cleanup(p.kill)
	return p
}

// kill is kill -9.
func (p *proc) kill() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGCONT) // a stopped process dies only once it runs
	_ = p.cmd.Process.Kill()
	<-p.exited
}

func (p *proc) signal(sig syscall.Signal) error { return p.cmd.Process.Signal(sig) }

// waitReady waits until the API answers /readyz with 200.
func (o *omnichat) waitReady(p *proc) {
	o.t.Helper()
	waitFor(o.t, 90*time.Second, "omnichat "+p.name+" is ready", func() error {
		select {
		case <-p.exited:
			o.t.Fatalf("omnichat %s exited: %s", p.name, o.logTail(p.name, 30))
		default:
		}
		resp, err := http.Get("http://" + o.addr + "/readyz")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			return fmt.Errorf("%d %s", resp.StatusCode, body)
		}
		return nil
	})
}

// logTail is the end of a process's log, for failure messages.
func (o *omnichat) logTail(mode string, lines int) string {
	f, err := os.Open(filepath.Join(o.dir, mode+".log"))
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	var all []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		all = append(all, sc.Text())
	}
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

// stack is one scenario's world: PostgreSQL, Temporal and omnichat's
// settings, with a connection to the database for the checks.
type stack struct {
	t        *testing.T
	dir      string
	pg       *postgres
	temporal *temporalServer
	app      *omnichat
	db       *sql.DB
	token    string
}

func newStack(t *testing.T, bin string) *stack {
	t.Helper()
	dir, err := os.MkdirTemp("", "omnichat-faults-")
	if err != nil {
		t.Fatal(err)
	}
	// PostgreSQL runs as another user, who must reach its data directory.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("OMNICHAT_FAULTS_KEEP") != "" {
			t.Logf("logs and state kept in %s", dir)
			return
		}
		_ = os.RemoveAll(dir)
	})
	s := &stack{t: t, dir: dir}
	s.pg = startPostgres(t, dir)
	s.temporal = startTemporal(t, dir)
	envFile := filepath.Join(dir, "omnichat.env")
	if err := os.WriteFile(envFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	env := []string{}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "OMNICHAT_") {
			env = append(env, kv)
		}
	}
	env = append(env,
		"OMNICHAT_HTTP_ADDR="+addr,
		"OMNICHAT_DATABASE_URL="+s.pg.URL("omnichat"),
		"OMNICHAT_TEMPORAL_ADDRESS="+s.temporal.address,
		"OMNICHAT_TASK_QUEUE=omnichat-faults",
		"OMNICHAT_LOG_LEVEL=info",
		"OMNICHAT_WEBHOOK_RATE_LIMIT=5000",
		"OMNICHAT_RATE_LIMIT=1000",
		"OMNICHAT_SHUTDOWN_TIMEOUT=5s",
		"OMNICHAT_ENV_FILE="+envFile,
	)
	s.app = &omnichat{t: t, bin: bin, dir: dir, env: env, addr: addr}
	s.app.run("migrate")
	out := strings.Fields(strings.TrimSpace(s.app.run("admin", "create", "-name", "Faults", "-email", "admin@faults.invalid")))
	if len(out) == 0 {
		t.Fatal("admin create printed no token")
	}
	s.token = out[len(out)-1]
	s.db, err = sql.Open("pgx", s.pg.URL("omnichat"))
	if err != nil {
		t.Fatal(err)
	}
	s.db.SetMaxOpenConns(4)
	t.Cleanup(func() { _ = s.db.Close() })
	return s
}

// query runs a read with a short deadline, so checks never hang on a
// stopped database.
func (s *stack) query(fn func(ctx context.Context, db *sql.DB) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return fn(ctx, s.db)
}
