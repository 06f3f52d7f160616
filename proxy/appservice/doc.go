// Package appservice connects the Messenger-Proxy to its homeserver as a Matrix application service (AS),
// so the proxy stays homeserver-agnostic and never calls an admin API.
//
// The registration (registration.go) claims a non-exclusive user namespace over every local user. That
// gives the proxy two standard capabilities:
//
//   - read any local user's account data, room state and events by masquerading with ?user_id= and the
//     as_token (client.go); the permission store (permconfig.go) reads TI-M permission configurations
//     this way;
//   - receive every event of rooms with local members through AS transactions (rooms.go); the room index
//     keeps the room facts the policy needs (creator, join rule, members, activity) and feeds the
//     periodic room jobs (jobs.go: orphaned rooms A_28564-01, ePA insured-only rooms).
//
// Homeserver set-up (Synapse shown; other homeservers have equivalent settings):
//
//	app_service_config_files: [/data/timstack-proxy.yaml]   # written by Registration.YAML
//	forgotten_room_retention_period: 7d                     # purges rooms every local user forgot (jobs.go)
//
// The homeserver must reach the appservice URL for transactions; Client.Ping proves it does.
//
// Matrix Application Service API v1.11; receive_ephemeral is written as false (v1.13 key, ignored by
// older homeservers).
package appservice
