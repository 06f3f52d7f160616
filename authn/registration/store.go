package registration

import (
	"context"
	"errors"
	"time"
)

// Store errors. Implementations wrap them so callers can tell the cases apart with errors.Is.
var (
	// ErrNotFound: no such record.
	ErrNotFound = errors.New("registration store: not found")
	// ErrConflict: a unique value (Telematik-ID, domain, MXID) is already taken.
	ErrConflict = errors.New("registration store: already exists")
	// ErrStale: a conditional update lost (the TOTP step was used meanwhile).
	ErrStale = errors.New("registration store: changed concurrently")
)

// Organisation is one institution with its Org-Admin. It owns one or more Telematik-IDs (SMC-Bs); the
// first is the one it signed up with and the one RegService tokens name.
type Organisation struct {
	ID           int64
	Name         string
	TelematikIDs []TelematikID // in the order they were linked
	CreatedAt    time.Time
}

// TelematikID is one SMC-B identity linked to an organisation.
type TelematikID struct {
	ID            string
	ProfessionOID string
	LinkedAt      time.Time
}

// OrgAdmin is the one administrator account of an organisation.
type OrgAdmin struct {
	ID    int64
	OrgID int64
	// TOTPSecret is the RFC 6238 shared secret; TOTPConfirmed is false until the first correct code.
	TOTPSecret    []byte
	TOTPConfirmed bool
	// TOTPLastStep is the last time step accepted; only later steps are accepted again.
	TOTPLastStep int64
	// MXID is the Matrix user the admin acts as for I_requestToken ("" when not bound).
	MXID      string
	CreatedAt time.Time
}

// ServiceState says whether a messenger service's organisation is active at the directory.
type ServiceState string

// Service states.
const (
	StateActive      ServiceState = "active"
	StateDeactivated ServiceState = "deactivated"
)

// MessengerService is one Matrix domain registered for an organisation.
type MessengerService struct {
	Domain          string
	OrgID           int64
	TelematikID     string // the one sent to the directory
	IsInsurance     bool
	IK              []string
	RedirectDomains []string
	State           ServiceState
	StateSince      time.Time
	CreatedAt       time.Time
}

// StoredList is the last verified federation list.
type StoredList struct {
	JWS     []byte // the original compact JWS, byte for byte
	Version int64
	// VerifiedContact is the last time the directory answered with this list or said it is current.
	VerifiedContact time.Time
}

// Session is a signed-in Org-Admin (after TOTP). Only the SHA-256 of the token is stored.
type Session struct {
	TokenHash []byte
	AdminID   int64
	ExpiresAt time.Time
}

// Store keeps the registration service's state.
type Store interface {
	// CreateOrganisation creates an organisation with its first Telematik-ID and its Org-Admin (TOTP not
	// yet confirmed). ErrConflict when the Telematik-ID is already linked.
	CreateOrganisation(ctx context.Context, name string, tid TelematikID, totpSecret []byte, now time.Time) (*Organisation, *OrgAdmin, error)
	// OrganisationByTelematikID finds the organisation owning tid.
	OrganisationByTelematikID(ctx context.Context, tid string) (*Organisation, error)
	// OrganisationByName finds an organisation by its exact (case-folded) name.
	OrganisationByName(ctx context.Context, name string) (*Organisation, error)
	Organisation(ctx context.Context, id int64) (*Organisation, error)
	// LinkTelematikID adds tid to the organisation; ErrConflict when it is linked anywhere already.
	LinkTelematikID(ctx context.Context, orgID int64, tid TelematikID) error
	// UnlinkTelematikID removes tid; refused (ErrConflict) for the organisation's last one.
	UnlinkTelematikID(ctx context.Context, orgID int64, tid string) error

	AdminByOrg(ctx context.Context, orgID int64) (*OrgAdmin, error)
	Admin(ctx context.Context, id int64) (*OrgAdmin, error)
	AdminByMXID(ctx context.Context, mxid string) (*OrgAdmin, error)
	// ResetTOTP replaces an unconfirmed enrolment's secret (a second enrolment attempt).
	ResetTOTP(ctx context.Context, adminID int64, secret []byte) error
	// UseTOTPStep records step as used and marks the enrolment confirmed, only if step is newer than the
	// stored one (ErrStale otherwise).
	UseTOTPStep(ctx context.Context, adminID int64, step int64) error
	// SetMXID binds the admin's Matrix user ("" unbinds); ErrConflict when another admin has it.
	SetMXID(ctx context.Context, adminID int64, mxid string) error

	AddService(ctx context.Context, s MessengerService) error
	Service(ctx context.Context, domain string) (*MessengerService, error)
	// Services lists the organisation's services (orgID 0: all).
	Services(ctx context.Context, orgID int64) ([]MessengerService, error)
	SetServiceState(ctx context.Context, domain string, state ServiceState, since time.Time) error
	DeleteService(ctx context.Context, domain string) error

	// FederationList returns the stored list; ErrNotFound when none was ever verified.
	FederationList(ctx context.Context) (*StoredList, error)
	// SaveFederationList stores a newly verified list (replacing the previous one).
	SaveFederationList(ctx context.Context, l StoredList) error
	// TouchFederationList records a verified contact for the stored version.
	TouchFederationList(ctx context.Context, version int64, at time.Time) error

	CreateSession(ctx context.Context, s Session) error
	// SessionByHash returns an unexpired session.
	SessionByHash(ctx context.Context, hash []byte, now time.Time) (*Session, error)
	DeleteSession(ctx context.Context, hash []byte) error
	DeleteExpiredSessions(ctx context.Context, now time.Time) error

	Close() error
}
