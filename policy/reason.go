package policy

// Reason names the rule that denied (or, for edge reasons, refused) a request. The Rego modules produce
// the same strings; proxy/reasons.go maps each to an HTTP status and Matrix errcode, and a test there proves
// every constant below has a row.
type Reason string

// Reasons produced by the Rego modules.
const (
	// Federation (AF_10064-02, A_25534, A_25537).
	ReasonOriginNotFederated      Reason = "origin_not_federated"
	ReasonDestinationNotFederated Reason = "destination_not_federated"
	ReasonInviterNotFederated     Reason = "inviter_not_federated"
	ReasonInviteeNotFederated     Reason = "invitee_not_federated"
	ReasonMediaServerNotFederated Reason = "media_server_not_federated"
	// Fail closed on the list itself: no verified contact with the source for the maximum age, or none yet.
	ReasonFederationListStale       Reason = "federation_list_stale"
	ReasonFederationListUnavailable Reason = "federation_list_unavailable"

	// Invites (A_26021-01, A_25705, AF_10233).
	ReasonInviteNotPermitted  Reason = "invite_not_permitted"
	ReasonEPAInsuredToInsured Reason = "epa_insured_to_insured"

	// Room creation and state (A_25368-01, A_25324-01, A_26202, A_28596, A_28271, A_26515-01).
	ReasonCreateRoomTooManyInvites Reason = "createroom_too_many_invites"
	ReasonPrivateRoomUnencrypted   Reason = "private_room_unencrypted"
	ReasonRoomVersionNotAllowed    Reason = "room_version_not_allowed"
	ReasonRoomTypeForbidden        Reason = "room_type_forbidden"
	ReasonProJoinRulePublic        Reason = "pro_join_rule_public"
	ReasonRemotePublicRoom         Reason = "remote_public_room"

	// ePA (A_26015-02, A_28587, A_26375, ePA text).
	ReasonEPAPublicRoom              Reason = "epa_public_room"
	ReasonEPAJoinRulePublicOrKnock   Reason = "epa_join_rule_public_or_knock"
	ReasonEPAWorldReadable           Reason = "epa_world_readable"
	ReasonEPAPublicRoomsDirectory    Reason = "epa_public_rooms_directory"
	ReasonEPAProfileNoSharedRoom     Reason = "epa_profile_no_shared_room"
	ReasonFederationPublicRoomsBlock Reason = "federation_public_rooms"

	// Events (A_25395-02, A_26228-01, A_28358).
	ReasonThreadRelation         Reason = "thread_relation"
	ReasonReactionNotSingleEmoji Reason = "reaction_not_single_emoji"
	ReasonRedactionTooOld        Reason = "redaction_too_old"

	// Misc client rules.
	ReasonStatusMsgTooLong       Reason = "status_msg_too_long"
	ReasonGuestRegistration      Reason = "guest_registration"
	ReasonProfileUnauthenticated Reason = "profile_unauthenticated"
	ReasonPublicRoomsUnauthed    Reason = "public_rooms_unauthenticated"

	// Shipped operator example (examples/operator/organization_type.rego): the peer's organisation types in
	// the directory include none the operator allows.
	ReasonOrganizationTypeNotAllowed Reason = "organization_type_not_allowed"
)

// Reasons produced in Go, at the edge or when the policy cannot decide. They share the mapping table with
// the Rego reasons so every refusal is answered the same way.
const (
	ReasonPolicyError          Reason = "policy_error"
	ReasonDirectoryUnavailable Reason = "directory_unavailable"
	ReasonTokenMissing         Reason = "token_missing"
	ReasonTokenUnknown         Reason = "token_unknown"
	ReasonXMatrixMissing       Reason = "xmatrix_missing"
	ReasonXMatrixMalformed     Reason = "xmatrix_malformed"
	ReasonXMatrixBadSignature  Reason = "xmatrix_bad_signature"
	ReasonXMatrixWrongDest     Reason = "xmatrix_wrong_destination"
	ReasonEndpointUnknown      Reason = "endpoint_unknown"
	ReasonMethodNotAllowed     Reason = "method_not_allowed"
	ReasonAmbiguousRequest     Reason = "ambiguous_request"
	ReasonBodyTooLarge         Reason = "body_too_large"
	ReasonBadJSON              Reason = "bad_json"
	ReasonNotJSON              Reason = "not_json"
	ReasonUpstreamUnavailable  Reason = "upstream_unavailable"
	ReasonEgressNotAllowed     Reason = "egress_not_allowed"
	ReasonRateLimited          Reason = "rate_limited"
)

// AllReasons lists every reason constant, Rego and Go, in a stable order (tests iterate it).
var AllReasons = []Reason{
	ReasonOriginNotFederated, ReasonDestinationNotFederated, ReasonInviterNotFederated, ReasonInviteeNotFederated,
	ReasonMediaServerNotFederated, ReasonFederationListStale, ReasonFederationListUnavailable,
	ReasonInviteNotPermitted, ReasonEPAInsuredToInsured,
	ReasonCreateRoomTooManyInvites, ReasonPrivateRoomUnencrypted, ReasonRoomVersionNotAllowed, ReasonRoomTypeForbidden,
	ReasonProJoinRulePublic, ReasonRemotePublicRoom,
	ReasonEPAPublicRoom, ReasonEPAJoinRulePublicOrKnock, ReasonEPAWorldReadable, ReasonEPAPublicRoomsDirectory,
	ReasonEPAProfileNoSharedRoom, ReasonFederationPublicRoomsBlock,
	ReasonThreadRelation, ReasonReactionNotSingleEmoji, ReasonRedactionTooOld,
	ReasonStatusMsgTooLong, ReasonGuestRegistration, ReasonProfileUnauthenticated, ReasonPublicRoomsUnauthed,
	ReasonOrganizationTypeNotAllowed,
	ReasonPolicyError, ReasonDirectoryUnavailable, ReasonTokenMissing, ReasonTokenUnknown,
	ReasonXMatrixMissing, ReasonXMatrixMalformed, ReasonXMatrixBadSignature, ReasonXMatrixWrongDest,
	ReasonEndpointUnknown, ReasonMethodNotAllowed, ReasonAmbiguousRequest, ReasonBodyTooLarge, ReasonBadJSON,
	ReasonNotJSON, ReasonUpstreamUnavailable, ReasonEgressNotAllowed, ReasonRateLimited,
}

// Decision is the policy's answer. Allow defaults to false: a decision the engine could not reach is a deny.
type Decision struct {
	Allow bool `json:"allow"`
	// Reasons name every rule that fired, sorted; empty when allowed.
	Reasons []Reason `json:"reasons,omitempty"`
	// Obligations are rewrites the proxy must apply before forwarding an allowed request.
	Obligations Obligations `json:"obligations,omitempty"`
	// Revision identifies the policy modules and data the decision was made with (decision log).
	Revision string `json:"revision,omitempty"`
	// Cached is true when the decision came from the decision cache.
	Cached bool `json:"-"`
}

// Obligations are the rewrites an allowed request needs.
type Obligations struct {
	// ForceFederateFalse sets creation_content["m.federate"]=false (Pro public rooms, A_26515-01).
	ForceFederateFalse bool `json:"force_federate_false,omitempty"`
	// RoomVersion sets createRoom's room_version when the client left it out (A_26248).
	RoomVersion string `json:"room_version,omitempty"`
	// HistoryVisibility sets the initial history visibility when the client left it out (A_25481).
	HistoryVisibility string `json:"history_visibility,omitempty"`
	// EmptyResult answers the request with an empty result instead of forwarding (ePA user directory).
	EmptyResult bool `json:"empty_result,omitempty"`
}
