// Package pgstore is the registration service's Store on PostgreSQL (pgx). It passes the same suite
// (registration/storetest) as the SQLite store.
package pgstore

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/timstack/timstack/authn/registration"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// migrationLock serialises migrations of concurrently starting instances ("timreg" as an integer).
const migrationLock = 0x74696d726567

// Store is a registration.Store on PostgreSQL.
type Store struct {
	pool *pgxpool.Pool
}

var _ registration.Store = (*Store)(nil)

// Open connects to dsn and applies pending migrations.
func Open(ctx context.Context, dsn string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("registration store: postgres: %w", err)
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		cfg.ConnConfig.RuntimeParams["application_name"] = "timstack-registration"
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("registration store: postgres: %w", err)
	}
	s := &Store{pool: pool}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("registration store: postgres: migrate: %w", err)
	}
	return s, nil
}

func (s *Store) migrate(ctx context.Context) error {
	migrations, err := registration.Migrations(migrationFS, "migrations")
	if err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(migrationLock)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS reg_schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
			return err
		}
		var have int
		if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM reg_schema_migrations`).Scan(&have); err != nil {
			return err
		}
		for _, m := range migrations {
			if m.Version <= have {
				continue
			}
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return fmt.Errorf("migration %s: %w", m.Name, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO reg_schema_migrations (version) VALUES ($1)`, m.Version); err != nil {
				return fmt.Errorf("migration %s: %w", m.Name, err)
			}
		}
		return nil
	})
}

// Close implements registration.Store.
func (s *Store) Close() error { s.pool.Close(); return nil }

func isUnique(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

// ts truncates to seconds like the SQLite store, so both engines round-trip the same values.
func ts(t time.Time) time.Time { return time.Unix(t.Unix(), 0).UTC() }

// CreateOrganisation implements registration.Store.
func (s *Store) CreateOrganisation(ctx context.Context, name string, tid registration.TelematikID, secret []byte, now time.Time) (*registration.Organisation, *registration.OrgAdmin, error) {
	var orgID, adminID int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `INSERT INTO reg_organisations (name, name_key, created_at) VALUES ($1, $2, $3) RETURNING id`, name, registration.OrganisationNameKey(name), ts(now)).Scan(&orgID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO reg_telematik_ids (telematik_id, org_id, profession_oid, linked_at, seq) VALUES ($1, $2, $3, $4, 1)`,
			tid.ID, orgID, tid.ProfessionOID, ts(now)); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `INSERT INTO reg_org_admins (org_id, totp_secret, created_at) VALUES ($1, $2, $3) RETURNING id`, orgID, secret, ts(now)).Scan(&adminID)
	})
	if isUnique(err) {
		return nil, nil, fmt.Errorf("create organisation: telematik-id %s: %w", tid.ID, registration.ErrConflict)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("create organisation: %w", err)
	}
	tid.LinkedAt = ts(now)
	return &registration.Organisation{ID: orgID, Name: name, TelematikIDs: []registration.TelematikID{tid}, CreatedAt: ts(now)},
		&registration.OrgAdmin{ID: adminID, OrgID: orgID, TOTPSecret: secret, CreatedAt: ts(now)}, nil
}

func (s *Store) organisationWhere(ctx context.Context, where string, arg any) (*registration.Organisation, error) {
	var o registration.Organisation
	err := s.pool.QueryRow(ctx, `SELECT id, name, created_at FROM reg_organisations WHERE `+where, arg).Scan(&o.ID, &o.Name, &o.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, registration.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("organisation: %w", err)
	}
	o.CreatedAt = o.CreatedAt.UTC()
	rows, err := s.pool.Query(ctx, `SELECT telematik_id, profession_oid, linked_at FROM reg_telematik_ids WHERE org_id = $1 ORDER BY seq`, o.ID)
	if err != nil {
		return nil, fmt.Errorf("organisation %d: %w", o.ID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var t registration.TelematikID
		if err := rows.Scan(&t.ID, &t.ProfessionOID, &t.LinkedAt); err != nil {
			return nil, fmt.Errorf("organisation %d: %w", o.ID, err)
		}
		t.LinkedAt = t.LinkedAt.UTC()
		o.TelematikIDs = append(o.TelematikIDs, t)
	}
	return &o, rows.Err()
}

// Organisation implements registration.Store.
func (s *Store) Organisation(ctx context.Context, id int64) (*registration.Organisation, error) {
	return s.organisationWhere(ctx, `id = $1`, id)
}

// OrganisationByTelematikID implements registration.Store.
func (s *Store) OrganisationByTelematikID(ctx context.Context, tid string) (*registration.Organisation, error) {
	return s.organisationWhere(ctx, `id = (SELECT org_id FROM reg_telematik_ids WHERE telematik_id = $1)`, tid)
}

// OrganisationByName implements registration.Store.
func (s *Store) OrganisationByName(ctx context.Context, name string) (*registration.Organisation, error) {
	if registration.OrganisationNameKey(name) == "" {
		return nil, registration.ErrNotFound
	}
	return s.organisationWhere(ctx, `name_key = $1 ORDER BY id LIMIT 1`, registration.OrganisationNameKey(name))
}

// LinkTelematikID implements registration.Store.
func (s *Store) LinkTelematikID(ctx context.Context, orgID int64, tid registration.TelematikID) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO reg_telematik_ids (telematik_id, org_id, profession_oid, linked_at, seq)
		VALUES ($1, $2, $3, $4, (SELECT COALESCE(MAX(seq), 0) + 1 FROM reg_telematik_ids WHERE org_id = $2))`,
		tid.ID, orgID, tid.ProfessionOID, ts(tid.LinkedAt))
	if isUnique(err) {
		return fmt.Errorf("link telematik-id %s: %w", tid.ID, registration.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("link telematik-id %s: %w", tid.ID, err)
	}
	return nil
}

// UnlinkTelematikID implements registration.Store.
func (s *Store) UnlinkTelematikID(ctx context.Context, orgID int64, tid string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM reg_telematik_ids WHERE org_id = $1 AND telematik_id = $2
		AND seq > (SELECT MIN(seq) FROM reg_telematik_ids WHERE org_id = $1)`, orgID, tid)
	if err != nil {
		return fmt.Errorf("unlink telematik-id %s: %w", tid, err)
	}
	if tag.RowsAffected() == 0 {
		var exists bool
		_ = s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM reg_telematik_ids WHERE org_id = $1 AND telematik_id = $2)`, orgID, tid).Scan(&exists)
		if !exists {
			return fmt.Errorf("unlink telematik-id %s: %w", tid, registration.ErrNotFound)
		}
		return fmt.Errorf("unlink telematik-id %s: the organisation's first Telematik-ID stays: %w", tid, registration.ErrConflict)
	}
	return nil
}

func (s *Store) adminWhere(ctx context.Context, where string, arg any) (*registration.OrgAdmin, error) {
	var a registration.OrgAdmin
	err := s.pool.QueryRow(ctx, `SELECT id, org_id, totp_secret, totp_confirmed, totp_last_step, COALESCE(mxid, ''), created_at FROM reg_org_admins WHERE `+where, arg).
		Scan(&a.ID, &a.OrgID, &a.TOTPSecret, &a.TOTPConfirmed, &a.TOTPLastStep, &a.MXID, &a.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, registration.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("org admin: %w", err)
	}
	a.CreatedAt = a.CreatedAt.UTC()
	return &a, nil
}

// AdminByOrg implements registration.Store.
func (s *Store) AdminByOrg(ctx context.Context, orgID int64) (*registration.OrgAdmin, error) {
	return s.adminWhere(ctx, `org_id = $1`, orgID)
}

// Admin implements registration.Store.
func (s *Store) Admin(ctx context.Context, id int64) (*registration.OrgAdmin, error) {
	return s.adminWhere(ctx, `id = $1`, id)
}

// AdminByMXID implements registration.Store.
func (s *Store) AdminByMXID(ctx context.Context, mxid string) (*registration.OrgAdmin, error) {
	if mxid == "" {
		return nil, registration.ErrNotFound
	}
	return s.adminWhere(ctx, `mxid = $1`, mxid)
}

// ResetTOTP implements registration.Store.
func (s *Store) ResetTOTP(ctx context.Context, adminID int64, secret []byte) error {
	tag, err := s.pool.Exec(ctx, `UPDATE reg_org_admins SET totp_secret = $1 WHERE id = $2 AND NOT totp_confirmed`, secret, adminID)
	if err != nil {
		return fmt.Errorf("reset totp: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("reset totp of admin %d: %w", adminID, registration.ErrStale)
	}
	return nil
}

// UseTOTPStep implements registration.Store.
func (s *Store) UseTOTPStep(ctx context.Context, adminID int64, step int64) error {
	tag, err := s.pool.Exec(ctx, `UPDATE reg_org_admins SET totp_last_step = $1, totp_confirmed = true WHERE id = $2 AND totp_last_step < $1`, step, adminID)
	if err != nil {
		return fmt.Errorf("use totp step: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("use totp step of admin %d: %w", adminID, registration.ErrStale)
	}
	return nil
}

// SetMXID implements registration.Store.
func (s *Store) SetMXID(ctx context.Context, adminID int64, mxid string) error {
	var v any
	if mxid != "" {
		v = mxid
	}
	tag, err := s.pool.Exec(ctx, `UPDATE reg_org_admins SET mxid = $1 WHERE id = $2`, v, adminID)
	if isUnique(err) {
		return fmt.Errorf("bind %s: %w", mxid, registration.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("bind %s: %w", mxid, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("bind %s: admin %d: %w", mxid, adminID, registration.ErrNotFound)
	}
	return nil
}

func list(v []string) []string {
	if v == nil {
		return []string{}
	}
	return v
}

// AddService implements registration.Store.
func (s *Store) AddService(ctx context.Context, m registration.MessengerService) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO reg_messenger_services (domain, org_id, telematik_id, is_insurance, ik, redirect_domains, state, state_since, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, m.Domain, m.OrgID, m.TelematikID, m.IsInsurance, list(m.IK), list(m.RedirectDomains),
		string(m.State), ts(m.StateSince), ts(m.CreatedAt))
	if isUnique(err) {
		return fmt.Errorf("add service %s: %w", m.Domain, registration.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("add service %s: %w", m.Domain, err)
	}
	return nil
}

const serviceColumns = `domain, org_id, telematik_id, is_insurance, ik, redirect_domains, state, state_since, created_at`

func scanService(row pgx.Row) (registration.MessengerService, error) {
	var m registration.MessengerService
	var state string
	err := row.Scan(&m.Domain, &m.OrgID, &m.TelematikID, &m.IsInsurance, &m.IK, &m.RedirectDomains, &state, &m.StateSince, &m.CreatedAt)
	m.State, m.StateSince, m.CreatedAt = registration.ServiceState(state), m.StateSince.UTC(), m.CreatedAt.UTC()
	return m, err
}

// Service implements registration.Store.
func (s *Store) Service(ctx context.Context, domain string) (*registration.MessengerService, error) {
	m, err := scanService(s.pool.QueryRow(ctx, `SELECT `+serviceColumns+` FROM reg_messenger_services WHERE domain = $1`, domain))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, registration.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("service %s: %w", domain, err)
	}
	return &m, nil
}

// Services implements registration.Store.
func (s *Store) Services(ctx context.Context, orgID int64) ([]registration.MessengerService, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+serviceColumns+` FROM reg_messenger_services WHERE $1 = 0 OR org_id = $1 ORDER BY domain`, orgID)
	if err != nil {
		return nil, fmt.Errorf("services: %w", err)
	}
	defer rows.Close()
	var out []registration.MessengerService
	for rows.Next() {
		m, err := scanService(rows)
		if err != nil {
			return nil, fmt.Errorf("services: %w", err)
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// SetServiceState implements registration.Store.
func (s *Store) SetServiceState(ctx context.Context, domain string, state registration.ServiceState, since time.Time) error {
	tag, err := s.pool.Exec(ctx, `UPDATE reg_messenger_services SET state = $1, state_since = $2 WHERE domain = $3`, string(state), ts(since), domain)
	if err != nil {
		return fmt.Errorf("service %s state: %w", domain, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("service %s: %w", domain, registration.ErrNotFound)
	}
	return nil
}

// DeleteService implements registration.Store.
func (s *Store) DeleteService(ctx context.Context, domain string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM reg_messenger_services WHERE domain = $1`, domain)
	if err != nil {
		return fmt.Errorf("delete service %s: %w", domain, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("delete service %s: %w", domain, registration.ErrNotFound)
	}
	return nil
}

// FederationList implements registration.Store.
func (s *Store) FederationList(ctx context.Context) (*registration.StoredList, error) {
	var l registration.StoredList
	err := s.pool.QueryRow(ctx, `SELECT jws, version, verified_contact FROM reg_federation_list WHERE id = 1`).Scan(&l.JWS, &l.Version, &l.VerifiedContact)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, registration.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("federation list: %w", err)
	}
	l.VerifiedContact = l.VerifiedContact.UTC()
	return &l, nil
}

// SaveFederationList implements registration.Store.
func (s *Store) SaveFederationList(ctx context.Context, l registration.StoredList) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO reg_federation_list (id, jws, version, verified_contact) VALUES (1, $1, $2, $3)
		ON CONFLICT (id) DO UPDATE SET jws = excluded.jws, version = excluded.version, verified_contact = excluded.verified_contact`,
		l.JWS, l.Version, ts(l.VerifiedContact))
	if err != nil {
		return fmt.Errorf("save federation list: %w", err)
	}
	return nil
}

// TouchFederationList implements registration.Store.
func (s *Store) TouchFederationList(ctx context.Context, version int64, at time.Time) error {
	tag, err := s.pool.Exec(ctx, `UPDATE reg_federation_list SET verified_contact = $1 WHERE id = 1 AND version = $2`, ts(at), version)
	if err != nil {
		return fmt.Errorf("federation list contact: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("federation list contact for version %d: %w", version, registration.ErrStale)
	}
	return nil
}

// CreateSession implements registration.Store.
func (s *Store) CreateSession(ctx context.Context, se registration.Session) error {
	if _, err := s.pool.Exec(ctx, `INSERT INTO reg_sessions (token_hash, admin_id, expires_at) VALUES ($1, $2, $3)`, se.TokenHash, se.AdminID, ts(se.ExpiresAt)); err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	return nil
}

// SessionByHash implements registration.Store.
func (s *Store) SessionByHash(ctx context.Context, hash []byte, now time.Time) (*registration.Session, error) {
	var se registration.Session
	err := s.pool.QueryRow(ctx, `SELECT token_hash, admin_id, expires_at FROM reg_sessions WHERE token_hash = $1 AND expires_at > $2`, hash, ts(now)).
		Scan(&se.TokenHash, &se.AdminID, &se.ExpiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, registration.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("session: %w", err)
	}
	se.ExpiresAt = se.ExpiresAt.UTC()
	return &se, nil
}

// DeleteSession implements registration.Store.
func (s *Store) DeleteSession(ctx context.Context, hash []byte) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM reg_sessions WHERE token_hash = $1`, hash); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

// DeleteExpiredSessions implements registration.Store.
func (s *Store) DeleteExpiredSessions(ctx context.Context, now time.Time) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM reg_sessions WHERE expires_at <= $1`, ts(now)); err != nil {
		return fmt.Errorf("delete expired sessions: %w", err)
	}
	return nil
}
