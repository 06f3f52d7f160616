// Package wiring adapts the authn packages to the interfaces the directory declares (the directory
// imports nothing from authn, so the binary joins them here), for `timstack directory serve` and the dev
// stack alike.
package wiring

import (
	"context"
	"errors"
	"fmt"

	"github.com/timstack/timstack/authn/idp"
	"github.com/timstack/timstack/authn/matrixopenid"
	"github.com/timstack/timstack/directory"
)

// DirectoryOpenID adapts the shared Matrix OpenID validator to the directory's OpenIDVerifier: refusals
// and unlisted servers become ErrOpenIDRefused (401), the rest 503.
func DirectoryOpenID(v *matrixopenid.Validator) directory.OpenIDVerifier { return openIDVerifier{v} }

type openIDVerifier struct{ v *matrixopenid.Validator }

func (m openIDVerifier) UserInfo(ctx context.Context, serverName, token string) (string, error) {
	mxid, err := m.v.Validate(ctx, token, serverName, "")
	if errors.Is(err, matrixopenid.ErrRefused) || errors.Is(err, matrixopenid.ErrNotFederated) {
		return "", fmt.Errorf("%w: %w", directory.ErrOpenIDRefused, err)
	}
	return mxid, err
}

// DirectoryOwnerLogin adapts the gematik IDP relying party to the directory's OwnerLogin
// (/owner-authenticate without a RegService token).
func DirectoryOwnerLogin(rp *idp.RelyingParty) directory.OwnerLogin { return ownerLogin{rp} }

type ownerLogin struct{ rp *idp.RelyingParty }

func (l ownerLogin) Begin(ctx context.Context, cardType string) (string, error) {
	u, _, err := l.rp.Begin(ctx, idp.BeginOptions{CardType: cardType})
	return u, err
}

func (l ownerLogin) Complete(ctx context.Context, state, code string) (directory.OwnerIdentity, error) {
	id, err := l.rp.Complete(ctx, state, code)
	if err != nil {
		if errors.Is(err, idp.ErrState) || errors.Is(err, idp.ErrTokenInvalid) || errors.Is(err, idp.ErrReplay) {
			return directory.OwnerIdentity{}, fmt.Errorf("%w: %w", directory.ErrOwnerLoginRefused, err)
		}
		return directory.OwnerIdentity{}, err
	}
	if err := OwnerProfession(id); err != nil {
		return directory.OwnerIdentity{}, fmt.Errorf("%w: %w", directory.ErrOwnerLoginRefused, err)
	}
	return directory.OwnerIdentity{TelematikID: id.TelematikID, ProfessionOID: id.ProfessionOID, Subject: id.Subject}, nil
}

// OwnerProfession: practitioners (HBA) own their Practitioner entry; institutions (SMC-B) own their
// Organization, as the VZD's /owner-authenticate documents ("HBA → Practitioner entry, SMC-B →
// Organization entry"). Insured persons and technical roles own nothing.
func OwnerProfession(id *idp.Identity) error {
	err := idp.CheckProfession(id, idp.UsePractitionerOwner)
	if err == nil || idp.CheckProfession(id, idp.UseOrgRegistrationPro) == nil {
		return nil
	}
	return err
}
