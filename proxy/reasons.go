package proxy

import (
	"net/http"

	"github.com/timstack/timstack/policy"
	"github.com/timstack/timstack/proxy/mxerr"
)

// reasonRow is how one refusal is answered. Messages are fixed and carry no input data; fail-closed rows
// name their cause class so an operator can tell a stale list from a refusal.
type reasonRow struct {
	reason  policy.Reason
	status  int
	errcode string
	message string
}

// reasonTable maps every policy and edge reason to its answer, in precedence order: when several reasons
// fire, the first row wins, so answers are deterministic. Statuses follow tim-proxy-spec.md §3.2, §3.3, §3.6
// and the values issue 4 fixes where the notes leave them open.
var reasonTable = []reasonRow{
	// Authentication first: an unauthenticated caller learns nothing about policy.
	{policy.ReasonTokenMissing, http.StatusUnauthorized, "M_MISSING_TOKEN", "Missing access token"},
	{policy.ReasonTokenUnknown, http.StatusUnauthorized, "M_UNKNOWN_TOKEN", "Unknown or expired access token"},
	{policy.ReasonXMatrixMissing, http.StatusUnauthorized, "M_UNAUTHORIZED", "Missing X-Matrix authorization"},
	{policy.ReasonXMatrixMalformed, http.StatusUnauthorized, "M_UNAUTHORIZED", "Malformed X-Matrix authorization"},
	{policy.ReasonXMatrixBadSignature, http.StatusUnauthorized, "M_UNAUTHORIZED", "Invalid X-Matrix signature"},
	{policy.ReasonXMatrixWrongDest, http.StatusUnauthorized, "M_UNAUTHORIZED", "X-Matrix destination is not this server"},
	{policy.ReasonProfileUnauthenticated, http.StatusUnauthorized, "M_MISSING_TOKEN", "Profile lookup requires authentication"},
	{policy.ReasonPublicRoomsUnauthed, http.StatusUnauthorized, "M_MISSING_TOKEN", "Room directory requires authentication"},
	// Request shape.
	{policy.ReasonAmbiguousRequest, http.StatusBadRequest, "M_UNRECOGNIZED", "Ambiguous request"},
	{policy.ReasonEndpointUnknown, http.StatusNotFound, "M_UNRECOGNIZED", "Unrecognized request"},
	{policy.ReasonMethodNotAllowed, http.StatusMethodNotAllowed, "M_UNRECOGNIZED", "Unrecognized request"},
	{policy.ReasonBodyTooLarge, http.StatusRequestEntityTooLarge, "M_TOO_LARGE", "Request too large"},
	{policy.ReasonNotJSON, http.StatusBadRequest, "M_NOT_JSON", "Content not JSON"},
	{policy.ReasonBadJSON, http.StatusBadRequest, "M_BAD_JSON", "Malformed JSON content"},
	{policy.ReasonRateLimited, http.StatusTooManyRequests, "M_LIMIT_EXCEEDED", "Too many requests"},
	// Fail closed: the proxy cannot decide safely.
	{policy.ReasonPolicyError, http.StatusForbidden, "M_FORBIDDEN", "Policy unavailable"},
	{policy.ReasonFederationListUnavailable, http.StatusForbidden, "M_FORBIDDEN", "Federation list unavailable"},
	{policy.ReasonFederationListStale, http.StatusForbidden, "M_FORBIDDEN", "Federation list outdated"},
	{policy.ReasonDirectoryUnavailable, http.StatusForbidden, "M_FORBIDDEN", "Directory unavailable"},
	{policy.ReasonUpstreamUnavailable, http.StatusBadGateway, "M_UNKNOWN", "Upstream unavailable"},
	// Federation membership (AF_10064-02, A_25534).
	{policy.ReasonOriginNotFederated, http.StatusForbidden, "M_FORBIDDEN", "Origin server is not part of the federation"},
	{policy.ReasonDestinationNotFederated, http.StatusForbidden, "M_FORBIDDEN", "Destination server is not part of the federation"},
	{policy.ReasonEgressNotAllowed, http.StatusNotFound, "M_UNRECOGNIZED", "Unrecognized request"},
	{policy.ReasonInviterNotFederated, http.StatusForbidden, "M_FORBIDDEN", "Inviting server is not part of the federation"},
	{policy.ReasonInviteeNotFederated, http.StatusForbidden, "M_FORBIDDEN", "Invited user's server is not part of the federation"},
	{policy.ReasonOrganizationTypeNotAllowed, http.StatusForbidden, "M_FORBIDDEN", "The other organisation's type is not allowed by this server's policy"},
	{policy.ReasonMediaServerNotFederated, http.StatusForbidden, "M_FORBIDDEN", "Media server is not part of the federation"},
	// Room creation (A_25368-01, A_26202, A_28596, A_25324-01).
	{policy.ReasonRoomVersionNotAllowed, http.StatusBadRequest, "M_UNSUPPORTED_ROOM_VERSION", "Room version not allowed"},
	{policy.ReasonRoomTypeForbidden, http.StatusBadRequest, "M_FORBIDDEN", "Room type not allowed"},
	{policy.ReasonCreateRoomTooManyInvites, http.StatusForbidden, "M_FORBIDDEN", "Only one user may be invited at room creation"},
	{policy.ReasonEPAPublicRoom, http.StatusForbidden, "M_FORBIDDEN", "Public rooms are not allowed"},
	{policy.ReasonEPAJoinRulePublicOrKnock, http.StatusForbidden, "M_FORBIDDEN", "Join rule not allowed"},
	{policy.ReasonEPAWorldReadable, http.StatusForbidden, "M_FORBIDDEN", "World-readable history is not allowed"},
	{policy.ReasonPrivateRoomUnencrypted, http.StatusForbidden, "M_FORBIDDEN", "Private rooms must be encrypted"},
	{policy.ReasonProJoinRulePublic, http.StatusBadRequest, "M_INVALID_ROOM_STATE", "A room cannot be made public"},
	{policy.ReasonRemotePublicRoom, http.StatusForbidden, "M_FORBIDDEN", "Public rooms of other servers cannot be joined"},
	// Invites (A_25705, A_26021-01).
	{policy.ReasonEPAInsuredToInsured, http.StatusForbidden, "M_FORBIDDEN", "Insured users cannot invite insured users"},
	{policy.ReasonInviteNotPermitted, http.StatusForbidden, "M_FORBIDDEN", "The invited user does not accept invites from this user"},
	// Directory and profile (ePA text, A_28587, A_26520).
	{policy.ReasonEPAPublicRoomsDirectory, http.StatusForbidden, "M_FORBIDDEN", "Room directory is not available"},
	{policy.ReasonFederationPublicRoomsBlock, http.StatusForbidden, "M_FORBIDDEN", "Room directory is not available over federation"},
	{policy.ReasonEPAProfileNoSharedRoom, http.StatusForbidden, "M_FORBIDDEN", "Profile not available"},
	// Events (A_25395-02, A_26228-01, A_28358).
	{policy.ReasonThreadRelation, http.StatusBadRequest, "M_FORBIDDEN", "Threads are not supported"},
	{policy.ReasonReactionNotSingleEmoji, http.StatusBadRequest, "M_BAD_JSON", "A reaction must be exactly one emoji"},
	{policy.ReasonRedactionTooOld, http.StatusForbidden, "M_FORBIDDEN", "Events older than 24 hours cannot be redacted"},
	// Misc.
	{policy.ReasonStatusMsgTooLong, http.StatusForbidden, "M_TOO_LARGE", "Status message too long"},
	{policy.ReasonGuestRegistration, http.StatusForbidden, "M_FORBIDDEN", "Guest access is disabled"},
}

var reasonIndex = func() map[policy.Reason]int {
	m := make(map[policy.Reason]int, len(reasonTable))
	for i, r := range reasonTable {
		m[r.reason] = i
	}
	return m
}()

// refusal turns the reasons of a denial into the one Matrix error the client sees: the row that comes first
// in reasonTable. A reason without a row (an operator module's own) becomes 403 M_FORBIDDEN; mapped reports
// whether that happened so the caller can log it as unmapped.
func refusal(reasons []policy.Reason) (e *mxerr.Error, mapped bool) {
	best, found := len(reasonTable), false
	var first policy.Reason
	for _, r := range reasons {
		if i, ok := reasonIndex[r]; ok {
			found = true
			if i < best {
				best = i
			}
		} else if first == "" {
			first = r
		}
	}
	if !found {
		e := mxerr.Forbidden("Forbidden by policy")
		e.Reason = string(first)
		if len(reasons) == 0 {
			e.Reason = string(policy.ReasonPolicyError)
		}
		return e, false
	}
	row := reasonTable[best]
	e = mxerr.New(row.status, row.errcode, row.message)
	e.Reason = string(row.reason)
	return e, true
}

// refuse is refusal for a single edge reason.
func refuse(r policy.Reason) *mxerr.Error {
	e, _ := refusal([]policy.Reason{r})
	return e
}
