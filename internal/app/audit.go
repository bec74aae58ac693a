package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/metric"
	"google.golang.org/grpc"

	"github.com/switchyard/switchyard/internal/audit"
	"github.com/switchyard/switchyard/internal/database"
	"github.com/switchyard/switchyard/internal/seal"
	"github.com/switchyard/switchyard/internal/session"
	"github.com/switchyard/switchyard/server"
	"github.com/switchyard/switchyard/server/interceptor"
)

// Audit sinks (AuditConfig.Sink).
const (
	AuditSinkSQL   = "sql"   // the SQL database: queryable (AuditService), pruned, verifiable
	AuditSinkJSONL = "jsonl" // a JSON-lines file for log shippers; no query, no pruning
)

// Defaults of the audit section.
const (
	DefaultAuditPruneInterval = time.Hour
	DefaultAuditFile          = "data/audit.jsonl"
	DefaultAuditSpoolDir      = "data/audit-spool"
)

// AuditConfig is the audit section: one hash-chained record per request (docs/audit.md).
type AuditConfig struct {
	// Enabled turns the audit log on (the default; write enabled: false to turn it off).
	Enabled bool `yaml:"enabled"`
	// Sink is "sql" (default) or "jsonl".
	Sink string `yaml:"sink"`
	// SQL is the database of the sql sink: embedded SQLite (data_dir/switchyard.db) by default.
	SQL database.Config `yaml:"sql"`
	// File is the jsonl sink's file (default data/audit.jsonl).
	File string `yaml:"file"`
	// Retention is how long the sql sink keeps records (default 4320h, 180 days).
	Retention time.Duration `yaml:"retention"`
	// PruneInterval is how often records older than the retention are removed (default 1h).
	PruneInterval time.Duration `yaml:"prune_interval"`
	// BufferSize bounds the records waiting to be written; beyond it records are dropped,
	// counted in switchyard.audit.records.dropped and logged (default 8192).
	BufferSize int `yaml:"buffer_size"`
	// Spool keeps the records the sink does not take (slow or down) on disk until it does
	// (default: data/audit-spool, 1 GiB, fsync every 100ms).
	Spool audit.SpoolConfig `yaml:"spool"`
	// RequiredTenants require their audit records ("*": every tenant): when the spool is full,
	// OnSpoolFull applies to their requests. Default: none.
	RequiredTenants []string `yaml:"required_tenants"`
	// OnSpoolFull is fail_closed (default: their new requests are refused with 503 UNAVAILABLE)
	// or fail_open (served; their records are dropped and counted).
	OnSpoolFull string `yaml:"on_spool_full"`
	// Bodies keeps request and response bodies, redacted and sealed (off by default).
	Bodies audit.BodyConfig `yaml:"bodies"`
}

func (c *AuditConfig) applyDefaults() {
	setDefault(&c.Sink, AuditSinkSQL)
	setDefault(&c.Retention, audit.DefaultRetention)
	setDefault(&c.PruneInterval, DefaultAuditPruneInterval)
	setDefault(&c.BufferSize, audit.DefaultBufferSize)
	setDefault(&c.Bodies.MaxBytes, audit.DefaultBodyMaxBytes)
	setDefault(&c.Spool.Dir, DefaultAuditSpoolDir)
	setDefault(&c.Spool.MaxBytes, audit.DefaultSpoolMaxBytes)
	setDefault(&c.Spool.Fsync, audit.FsyncInterval)
	setDefault(&c.Spool.FsyncInterval, audit.DefaultSpoolFsyncInterval)
	setDefault(&c.OnSpoolFull, audit.FailClosed)
	if c.Sink == AuditSinkJSONL {
		setDefault(&c.File, DefaultAuditFile)
	}
}

// validate reports the section's errors through add.
func (c *AuditConfig) validate(add func(format string, args ...any)) {
	if !c.Enabled {
		return
	}
	switch c.Sink {
	case AuditSinkSQL:
		switch c.SQL.Driver {
		case "", database.SQLite:
		case database.Postgres, "postgresql", "pgx":
			if c.SQL.DSN == "" {
				add("audit.sql.dsn: required by driver %q", c.SQL.Driver)
			}
		default:
			add("audit.sql.driver: unknown driver %q (want sqlite or postgres)", c.SQL.Driver)
		}
	case AuditSinkJSONL:
	default:
		add("audit.sink: unknown sink %q (want %q or %q)", c.Sink, AuditSinkSQL, AuditSinkJSONL)
	}
	if c.Retention < 24*time.Hour {
		add("audit.retention: %s is less than a day", c.Retention)
	}
	if c.PruneInterval <= 0 {
		add("audit.prune_interval: must be positive")
	}
	if c.BufferSize < 0 || c.Bodies.MaxBytes < 0 {
		add("audit: buffer_size and bodies.max_bytes must not be negative")
	}
	if c.Spool.MaxBytes < -1 {
		add("audit.spool.max_bytes: %d (want a size in bytes, or -1 for no spool)", c.Spool.MaxBytes)
	}
	switch c.Spool.Fsync {
	case "", audit.FsyncAlways, audit.FsyncInterval, audit.FsyncNever:
	default:
		add("audit.spool.fsync: unknown policy %q (want %s, %s or %s)", c.Spool.Fsync, audit.FsyncAlways, audit.FsyncInterval, audit.FsyncNever)
	}
	if c.Spool.FsyncInterval < 0 {
		add("audit.spool.fsync_interval: must not be negative")
	}
	switch c.OnSpoolFull {
	case "", audit.FailClosed, audit.FailOpen:
	default:
		add("audit.on_spool_full: unknown policy %q (want %s or %s)", c.OnSpoolFull, audit.FailClosed, audit.FailOpen)
	}
	for _, t := range c.RequiredTenants {
		if t == "" || strings.HasPrefix(t, "_") {
			add("audit.required_tenants: %q is not a tenant name", t)
		}
	}
	if _, err := audit.NewRedactor(c.Bodies.RedactPaths, c.Bodies.RedactPatterns); err != nil {
		add("audit.bodies: %w", err)
	}
	if _, err := seal.New(c.Bodies.Encryption); err != nil {
		add("audit.bodies.encryption: %w", err)
	}
}

// auditLog is what buildAudit set up; a nil *auditLog (audit off) audits nothing, registers
// nothing and closes nothing.
type auditLog struct {
	writer   *audit.Writer
	store    *audit.Store // nil for the jsonl sink
	db       *database.DB
	keys     *seal.Keyring
	maxBody  int
	stopPrun context.CancelFunc
	pruned   chan struct{}
	once     sync.Once
	log      *slog.Logger
}

// buildAudit opens the sink, starts the writer and, for the sql sink, the pruning job.
func buildAudit(ctx context.Context, c AuditConfig, mp metric.MeterProvider, log *slog.Logger) (*auditLog, error) {
	if !c.Enabled {
		return nil, nil
	}
	red, err := audit.NewRedactor(c.Bodies.RedactPaths, c.Bodies.RedactPatterns)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	keys, err := seal.New(c.Bodies.Encryption)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	a := &auditLog{keys: keys, log: log}
	if c.Bodies.Enabled {
		a.maxBody = c.Bodies.MaxBytes
	}
	var sink audit.Sink
	switch c.Sink {
	case AuditSinkJSONL:
		if sink, err = audit.OpenJSONL(c.File); err != nil {
			return nil, fmt.Errorf("audit: %w", err)
		}
	default:
		if a.db, err = database.Open(ctx, c.SQL); err != nil {
			return nil, fmt.Errorf("audit: %w", err)
		}
		if a.store, err = audit.NewStore(ctx, a.db, nil); err != nil {
			_ = a.db.Close()
			return nil, fmt.Errorf("audit: %w", err)
		}
		sink = a.store
	}
	var spool *audit.Spool
	if c.Spool.MaxBytes != -1 {
		if spool, err = audit.OpenSpool(c.Spool, log); err != nil {
			_ = sink.Close()
			if a.db != nil {
				_ = a.db.Close()
			}
			return nil, fmt.Errorf("audit: %w", err)
		}
		if n := spool.Len(); n > 0 {
			log.Info("audit records left in the spool by the last run; replaying them", "records", n)
		}
	}
	a.writer = audit.NewWriter(sink, audit.WriterOptions{BufferSize: c.BufferSize, Logger: log,
		MeterProvider: mp, Redactor: red, Keyring: keys, Spool: spool,
		RequiredTenants: c.RequiredTenants, OnSpoolFull: c.OnSpoolFull})
	if a.store != nil {
		pctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		a.stopPrun, a.pruned = cancel, make(chan struct{})
		go a.prune(pctx, c.Retention, c.PruneInterval)
	}
	return a, nil
}

// prune removes records older than retention now and then every interval, until ctx ends.
func (a *auditLog) prune(ctx context.Context, retention, interval time.Duration) {
	defer close(a.pruned)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		n, err := a.store.Prune(ctx, time.Now().Add(-retention))
		switch {
		case err != nil && ctx.Err() == nil:
			a.log.Error("audit pruning", "err", err)
		case n > 0:
			a.log.Info("audit records pruned", "records", n, "retention", retention.String())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// auditor is the interceptor's Auditor: nil when audit is off.
func (a *auditLog) auditor() interceptor.Auditor {
	if a == nil {
		return nil
	}
	return a.writer
}

// bodyMax is the interceptor's AuditBodyMax.
func (a *auditLog) bodyMax() int {
	if a == nil {
		return 0
	}
	return a.maxBody
}

// userEraser is SessionService's UserEraser: it erases the user's audit bodies in the SQL sink.
// nil when audit is off or its sink is jsonl (a log pipeline's, nothing to erase here).
func (a *auditLog) userEraser() session.UserEraser {
	if a == nil || a.store == nil {
		return nil
	}
	return a.store.EraseBodies
}

// register registers AuditService on s when the sink is queryable.
func (a *auditLog) register(s grpc.ServiceRegistrar) {
	if a == nil || a.store == nil {
		return
	}
	server.RegisterAudit(s, auditQuerier{a})
}

// close writes the queued records (within 10 s), stops pruning and closes the database. Call it
// after the servers have stopped. It is idempotent.
func (a *auditLog) close() {
	if a == nil {
		return
	}
	a.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := a.writer.Close(ctx); err != nil {
			a.log.Error("audit: records not written at shutdown", "err", err, "dropped", a.writer.Dropped())
		}
		if a.stopPrun != nil {
			a.stopPrun()
			<-a.pruned
		}
		if a.db != nil {
			_ = a.db.Close()
		}
	})
}

// auditQuerier serves AuditService from the store, opening bodies with the keyring.
type auditQuerier struct{ a *auditLog }

func (q auditQuerier) Query(ctx context.Context, f audit.Filter) ([]*audit.Record, string, error) {
	return q.a.store.Query(ctx, f)
}

func (q auditQuerier) EraseBodies(ctx context.Context, tenant, subject string) (int64, error) {
	return q.a.store.EraseBodies(ctx, tenant, subject)
}

func (q auditQuerier) OpenBody(r *audit.Record) ([]byte, error) { return audit.OpenBody(q.a.keys, r) }

// auditVerify checks the configured audit log's hash chains and prints the first bad record of
// each broken tenant chain. It fails when a chain is broken.
func auditVerify(ctx context.Context, path string, getenv func(string) string, stdout io.Writer) error {
	cfg, err := LoadConfig(path, getenv)
	if err != nil {
		return err
	}
	c := cfg.Audit
	var problems []audit.Problem
	var checked int64
	switch c.Sink {
	case AuditSinkJSONL:
		f, err := os.Open(c.File)
		if err != nil {
			return fmt.Errorf("audit verify: %w", err)
		}
		defer f.Close()
		if problems, err = audit.VerifyJSONL(f); err != nil {
			return fmt.Errorf("audit verify %s: %w", c.File, err)
		}
	default:
		db, err := database.Open(ctx, c.SQL)
		if err != nil {
			return fmt.Errorf("audit verify: %w", err)
		}
		defer db.Close()
		st, err := audit.NewStore(ctx, db, nil)
		if err != nil {
			return fmt.Errorf("audit verify: %w", err)
		}
		if problems, checked, err = st.Verify(ctx); err != nil {
			return fmt.Errorf("audit verify: %w", err)
		}
	}
	for _, p := range problems {
		fmt.Fprintf(stdout, "BROKEN %s\n", p)
	}
	if len(problems) > 0 {
		return fmt.Errorf("audit verify: %d tenant chain(s) broken", len(problems))
	}
	if c.Sink == AuditSinkJSONL {
		fmt.Fprintf(stdout, "OK: every chain in %s verifies\n", c.File)
	} else {
		fmt.Fprintf(stdout, "OK: %d records verified\n", checked)
	}
	return nil
}
