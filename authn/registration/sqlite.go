package registration

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	_ "modernc.org/sqlite" // database/sql driver "sqlite"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// SQLiteStore is the Store on one SQLite file.
type SQLiteStore struct {
	db *sql.DB
}

var _ Store = (*SQLiteStore)(nil)

// OpenSQLite opens (creating when absent) the database at path and applies pending migrations.
func OpenSQLite(ctx context.Context, path string) (*SQLiteStore, error) {
	const pragmas = "_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)"
	db, err := sql.Open("sqlite", "file:"+path+"?"+pragmas+"&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("registration store: open %s: %w", path, err)
	}
	// One connection: SQLite has one writer anyway, and the service's load is a handful of admins.
	db.SetMaxOpenConns(1)
	s := &SQLiteStore{db: db}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// migrate applies migrations/NNNN_*.sql in order, each in a transaction with its version recorded.
func (s *SQLiteStore) migrate(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("registration store: migrations table: %w", err)
	}
	migrations, err := Migrations(migrationFS, "migrations")
	if err != nil {
		return fmt.Errorf("registration store: %w", err)
	}
	var have int
	if err := s.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&have); err != nil {
		return fmt.Errorf("registration store: schema version: %w", err)
	}
	for _, m := range migrations {
		if m.Version <= have {
			continue
		}
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
			tx.Rollback()
			return fmt.Errorf("registration store: migration %s: %w", m.Name, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`, m.Version, time.Now().Unix()); err != nil {
			tx.Rollback()
			return fmt.Errorf("registration store: migration %s: %w", m.Name, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("registration store: migration %s: %w", m.Name, err)
		}
	}
	return nil
}

// Close implements Store.
func (s *SQLiteStore) Close() error { return s.db.Close() }

func isUnique(err error) bool {
	return err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed")
}

func unix(t time.Time) int64 { return t.Unix() }

func fromUnix(s int64) time.Time { return time.Unix(s, 0).UTC() }

// CreateOrganisation implements Store.
func (s *SQLiteStore) CreateOrganisation(ctx context.Context, name string, tid TelematikID, secret []byte, now time.Time) (*Organisation, *OrgAdmin, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("create organisation: %w", err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `INSERT INTO organisations (name, name_key, created_at) VALUES (?, ?, ?)`, name, OrganisationNameKey(name), unix(now))
	if err != nil {
		return nil, nil, fmt.Errorf("create organisation: %w", err)
	}
	orgID, _ := res.LastInsertId()
	if _, err := tx.ExecContext(ctx, `INSERT INTO telematik_ids (telematik_id, org_id, profession_oid, linked_at, seq) VALUES (?, ?, ?, ?, 1)`,
		tid.ID, orgID, tid.ProfessionOID, unix(now)); err != nil {
		if isUnique(err) {
			return nil, nil, fmt.Errorf("create organisation: telematik-id %s: %w", tid.ID, ErrConflict)
		}
		return nil, nil, fmt.Errorf("create organisation: %w", err)
	}
	res, err = tx.ExecContext(ctx, `INSERT INTO org_admins (org_id, totp_secret, created_at) VALUES (?, ?, ?)`, orgID, secret, unix(now))
	if err != nil {
		return nil, nil, fmt.Errorf("create organisation: admin: %w", err)
	}
	adminID, _ := res.LastInsertId()
	if err := tx.Commit(); err != nil {
		return nil, nil, fmt.Errorf("create organisation: %w", err)
	}
	tid.LinkedAt = fromUnix(unix(now))
	org := &Organisation{ID: orgID, Name: name, TelematikIDs: []TelematikID{tid}, CreatedAt: fromUnix(unix(now))}
	return org, &OrgAdmin{ID: adminID, OrgID: orgID, TOTPSecret: secret, CreatedAt: fromUnix(unix(now))}, nil
}

func (s *SQLiteStore) organisationWhere(ctx context.Context, where string, arg any) (*Organisation, error) {
	var o Organisation
	var created int64
	err := s.db.QueryRowContext(ctx, `SELECT id, name, created_at FROM organisations WHERE `+where, arg).Scan(&o.ID, &o.Name, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("organisation: %w", err)
	}
	o.CreatedAt = fromUnix(created)
	rows, err := s.db.QueryContext(ctx, `SELECT telematik_id, profession_oid, linked_at FROM telematik_ids WHERE org_id = ? ORDER BY seq`, o.ID)
	if err != nil {
		return nil, fmt.Errorf("organisation %d: %w", o.ID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var t TelematikID
		var at int64
		if err := rows.Scan(&t.ID, &t.ProfessionOID, &at); err != nil {
			return nil, fmt.Errorf("organisation %d: %w", o.ID, err)
		}
		t.LinkedAt = fromUnix(at)
		o.TelematikIDs = append(o.TelematikIDs, t)
	}
	return &o, rows.Err()
}

// Organisation implements Store.
func (s *SQLiteStore) Organisation(ctx context.Context, id int64) (*Organisation, error) {
	return s.organisationWhere(ctx, `id = ?`, id)
}

// OrganisationByTelematikID implements Store.
func (s *SQLiteStore) OrganisationByTelematikID(ctx context.Context, tid string) (*Organisation, error) {
	return s.organisationWhere(ctx, `id = (SELECT org_id FROM telematik_ids WHERE telematik_id = ?)`, tid)
}

// OrganisationByName implements Store.
func (s *SQLiteStore) OrganisationByName(ctx context.Context, name string) (*Organisation, error) {
	if OrganisationNameKey(name) == "" {
		return nil, ErrNotFound
	}
	return s.organisationWhere(ctx, `name_key = ? ORDER BY id LIMIT 1`, OrganisationNameKey(name))
}

// LinkTelematikID implements Store.
func (s *SQLiteStore) LinkTelematikID(ctx context.Context, orgID int64, tid TelematikID) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO telematik_ids (telematik_id, org_id, profession_oid, linked_at, seq)
		VALUES (?, ?, ?, ?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM telematik_ids WHERE org_id = ?))`,
		tid.ID, orgID, tid.ProfessionOID, unix(tid.LinkedAt), orgID)
	if isUnique(err) {
		return fmt.Errorf("link telematik-id %s: %w", tid.ID, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("link telematik-id %s: %w", tid.ID, err)
	}
	return nil
}

// UnlinkTelematikID implements Store.
func (s *SQLiteStore) UnlinkTelematikID(ctx context.Context, orgID int64, tid string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM telematik_ids WHERE org_id = ? AND telematik_id = ?
		AND (SELECT COUNT(*) FROM telematik_ids WHERE org_id = ?) > 1
		AND seq > (SELECT MIN(seq) FROM telematik_ids WHERE org_id = ?)`, orgID, tid, orgID, orgID)
	if err != nil {
		return fmt.Errorf("unlink telematik-id %s: %w", tid, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		var exists int
		_ = s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM telematik_ids WHERE org_id = ? AND telematik_id = ?`, orgID, tid).Scan(&exists)
		if exists == 0 {
			return fmt.Errorf("unlink telematik-id %s: %w", tid, ErrNotFound)
		}
		return fmt.Errorf("unlink telematik-id %s: the organisation's first Telematik-ID stays: %w", tid, ErrConflict)
	}
	return nil
}

const adminColumns = `id, org_id, totp_secret, totp_confirmed, totp_last_step, COALESCE(mxid, ''), created_at`

func (s *SQLiteStore) adminWhere(ctx context.Context, where string, arg any) (*OrgAdmin, error) {
	var a OrgAdmin
	var created int64
	err := s.db.QueryRowContext(ctx, `SELECT `+adminColumns+` FROM org_admins WHERE `+where, arg).
		Scan(&a.ID, &a.OrgID, &a.TOTPSecret, &a.TOTPConfirmed, &a.TOTPLastStep, &a.MXID, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("org admin: %w", err)
	}
	a.CreatedAt = fromUnix(created)
	return &a, nil
}

// AdminByOrg implements Store.
func (s *SQLiteStore) AdminByOrg(ctx context.Context, orgID int64) (*OrgAdmin, error) {
	return s.adminWhere(ctx, `org_id = ?`, orgID)
}

// Admin implements Store.
func (s *SQLiteStore) Admin(ctx context.Context, id int64) (*OrgAdmin, error) {
	return s.adminWhere(ctx, `id = ?`, id)
}

// AdminByMXID implements Store.
func (s *SQLiteStore) AdminByMXID(ctx context.Context, mxid string) (*OrgAdmin, error) {
	if mxid == "" {
		return nil, ErrNotFound
	}
	return s.adminWhere(ctx, `mxid = ?`, mxid)
}

// ResetTOTP implements Store.
func (s *SQLiteStore) ResetTOTP(ctx context.Context, adminID int64, secret []byte) error {
	res, err := s.db.ExecContext(ctx, `UPDATE org_admins SET totp_secret = ? WHERE id = ? AND totp_confirmed = 0`, secret, adminID)
	if err != nil {
		return fmt.Errorf("reset totp: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("reset totp of admin %d: %w", adminID, ErrStale)
	}
	return nil
}

// UseTOTPStep implements Store.
func (s *SQLiteStore) UseTOTPStep(ctx context.Context, adminID int64, step int64) error {
	res, err := s.db.ExecContext(ctx, `UPDATE org_admins SET totp_last_step = ?, totp_confirmed = 1 WHERE id = ? AND totp_last_step < ?`, step, adminID, step)
	if err != nil {
		return fmt.Errorf("use totp step: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("use totp step of admin %d: %w", adminID, ErrStale)
	}
	return nil
}

// SetMXID implements Store.
func (s *SQLiteStore) SetMXID(ctx context.Context, adminID int64, mxid string) error {
	var v any
	if mxid != "" {
		v = mxid
	}
	res, err := s.db.ExecContext(ctx, `UPDATE org_admins SET mxid = ? WHERE id = ?`, v, adminID)
	if isUnique(err) {
		return fmt.Errorf("bind %s: %w", mxid, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("bind %s: %w", mxid, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("bind %s: admin %d: %w", mxid, adminID, ErrNotFound)
	}
	return nil
}

func jsonList(v []string) string {
	if v == nil {
		v = []string{}
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// AddService implements Store.
func (s *SQLiteStore) AddService(ctx context.Context, m MessengerService) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO messenger_services (domain, org_id, telematik_id, is_insurance, ik, redirect_domains, state, state_since, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, m.Domain, m.OrgID, m.TelematikID, m.IsInsurance, jsonList(m.IK), jsonList(m.RedirectDomains),
		string(m.State), unix(m.StateSince), unix(m.CreatedAt))
	if isUnique(err) {
		return fmt.Errorf("add service %s: %w", m.Domain, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("add service %s: %w", m.Domain, err)
	}
	return nil
}

const serviceColumns = `domain, org_id, telematik_id, is_insurance, ik, redirect_domains, state, state_since, created_at`

func scanService(sc interface{ Scan(...any) error }) (MessengerService, error) {
	var m MessengerService
	var ik, rd, state string
	var since, created int64
	if err := sc.Scan(&m.Domain, &m.OrgID, &m.TelematikID, &m.IsInsurance, &ik, &rd, &state, &since, &created); err != nil {
		return m, err
	}
	if err := json.Unmarshal([]byte(ik), &m.IK); err != nil {
		return m, fmt.Errorf("service %s: ik: %w", m.Domain, err)
	}
	if err := json.Unmarshal([]byte(rd), &m.RedirectDomains); err != nil {
		return m, fmt.Errorf("service %s: redirect domains: %w", m.Domain, err)
	}
	m.State, m.StateSince, m.CreatedAt = ServiceState(state), fromUnix(since), fromUnix(created)
	return m, nil
}

// Service implements Store.
func (s *SQLiteStore) Service(ctx context.Context, domain string) (*MessengerService, error) {
	m, err := scanService(s.db.QueryRowContext(ctx, `SELECT `+serviceColumns+` FROM messenger_services WHERE domain = ?`, domain))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("service %s: %w", domain, err)
	}
	return &m, nil
}

// Services implements Store.
func (s *SQLiteStore) Services(ctx context.Context, orgID int64) ([]MessengerService, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+serviceColumns+` FROM messenger_services WHERE ? = 0 OR org_id = ? ORDER BY domain`, orgID, orgID)
	if err != nil {
		return nil, fmt.Errorf("services: %w", err)
	}
	defer rows.Close()
	var out []MessengerService
	for rows.Next() {
		m, err := scanService(rows)
		if err != nil {
			return nil, fmt.Errorf("services: %w", err)
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// SetServiceState implements Store.
func (s *SQLiteStore) SetServiceState(ctx context.Context, domain string, state ServiceState, since time.Time) error {
	res, err := s.db.ExecContext(ctx, `UPDATE messenger_services SET state = ?, state_since = ? WHERE domain = ?`, string(state), unix(since), domain)
	if err != nil {
		return fmt.Errorf("service %s state: %w", domain, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("service %s: %w", domain, ErrNotFound)
	}
	return nil
}

// DeleteService implements Store.
func (s *SQLiteStore) DeleteService(ctx context.Context, domain string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM messenger_services WHERE domain = ?`, domain)
	if err != nil {
		return fmt.Errorf("delete service %s: %w", domain, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("delete service %s: %w", domain, ErrNotFound)
	}
	return nil
}

// FederationList implements Store.
func (s *SQLiteStore) FederationList(ctx context.Context) (*StoredList, error) {
	var l StoredList
	var contact int64
	err := s.db.QueryRowContext(ctx, `SELECT jws, version, verified_contact FROM federation_list WHERE id = 1`).Scan(&l.JWS, &l.Version, &contact)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("federation list: %w", err)
	}
	l.VerifiedContact = fromUnix(contact)
	return &l, nil
}

// SaveFederationList implements Store.
func (s *SQLiteStore) SaveFederationList(ctx context.Context, l StoredList) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO federation_list (id, jws, version, verified_contact) VALUES (1, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET jws = excluded.jws, version = excluded.version, verified_contact = excluded.verified_contact`,
		l.JWS, l.Version, unix(l.VerifiedContact))
	if err != nil {
		return fmt.Errorf("save federation list: %w", err)
	}
	return nil
}

// TouchFederationList implements Store.
func (s *SQLiteStore) TouchFederationList(ctx context.Context, version int64, at time.Time) error {
	res, err := s.db.ExecContext(ctx, `UPDATE federation_list SET verified_contact = ? WHERE id = 1 AND version = ?`, unix(at), version)
	if err != nil {
		return fmt.Errorf("federation list contact: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("federation list contact for version %d: %w", version, ErrStale)
	}
	return nil
}

// CreateSession implements Store.
func (s *SQLiteStore) CreateSession(ctx context.Context, se Session) error {
	if _, err := s.db.ExecContext(ctx, `INSERT INTO sessions (token_hash, admin_id, expires_at) VALUES (?, ?, ?)`, se.TokenHash, se.AdminID, unix(se.ExpiresAt)); err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	return nil
}

// SessionByHash implements Store.
func (s *SQLiteStore) SessionByHash(ctx context.Context, hash []byte, now time.Time) (*Session, error) {
	var se Session
	var exp int64
	err := s.db.QueryRowContext(ctx, `SELECT token_hash, admin_id, expires_at FROM sessions WHERE token_hash = ? AND expires_at > ?`, hash, unix(now)).
		Scan(&se.TokenHash, &se.AdminID, &exp)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("session: %w", err)
	}
	se.ExpiresAt = fromUnix(exp)
	return &se, nil
}

// DeleteSession implements Store.
func (s *SQLiteStore) DeleteSession(ctx context.Context, hash []byte) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM sessions WHERE token_hash = ?`, hash); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

// DeleteExpiredSessions implements Store.
func (s *SQLiteStore) DeleteExpiredSessions(ctx context.Context, now time.Time) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM sessions WHERE expires_at <= ?`, unix(now)); err != nil {
		return fmt.Errorf("delete expired sessions: %w", err)
	}
	return nil
}
