package sso

import (
	"errors"
	"strings"
	"testing"
)

func TestEncodeLocalpart(t *testing.T) {
	tests := []struct{ in, want string }{
		{"1-HBA-Testkarte-883110000129084", "1-_h_b_a-_testkarte-883110000129084"},
		{"3-SMC-B-Testkarte-883110000129068", "3-_s_m_c-_b-_testkarte-883110000129068"},
		{"a_b", "a__b"},
		{"x y:ü", "x=20y=3a=c3=bc"},
	}
	for _, tt := range tests {
		if got := EncodeLocalpart(tt.in); got != tt.want {
			t.Errorf("EncodeLocalpart(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if !localpartRE.MatchString(EncodeLocalpart(tt.in)) {
			t.Errorf("EncodeLocalpart(%q) is not a valid localpart", tt.in)
		}
	}
	// Telematik-IDs that differ only in case or in "_" versus "-" must not share an account.
	seen := map[string]string{}
	for _, id := range []string{"1-HBA-x", "1-hba-x", "1_HBA_x", "1-HBA_x", "1-_h_b_a-x"} {
		lp := EncodeLocalpart(id)
		if other, ok := seen[lp]; ok {
			t.Errorf("%q and %q both map to %q", id, other, lp)
		}
		seen[lp] = id
	}
}

func TestMappingLocalpart(t *testing.T) {
	table := MappingConfig{Users: []MappedUser{
		{TelematikID: "1-HBA-1", ProfessionOID: "1.2.276.0.76.4.30", Localpart: "dr.arzt"},
		{TelematikID: "3-SMC-B-1", Localpart: "apotheke"},
	}}
	derived := MappingConfig{Mode: MappingTelematikID, Users: table.Users}
	for _, m := range []*MappingConfig{&table, &derived} {
		if err := m.Validate(); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name    string
		m       *MappingConfig
		id, oid string
		want    string
		wantErr bool
	}{
		{"a listed card with its profession gets its account", &table, "1-HBA-1", "1.2.276.0.76.4.30", "dr.arzt", false},
		{"a listed Telematik-ID with another profession is not mapped", &table, "1-HBA-1", "1.2.276.0.76.4.31", "", true},
		{"an entry without profession matches any", &table, "3-SMC-B-1", "1.2.276.0.76.4.54", "apotheke", false},
		{"an unlisted card has no account in table mode", &table, "1-HBA-2", "1.2.276.0.76.4.30", "", true},
		{"table entries override derivation", &derived, "1-HBA-1", "1.2.276.0.76.4.30", "dr.arzt", false},
		{"an unlisted card gets the derived localpart", &derived, "1-HBA-2", "1.2.276.0.76.4.30", "1-_h_b_a-2", false},
		{"an empty Telematik-ID is never mapped", &derived, "", "1.2.276.0.76.4.30", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.m.Localpart(tt.id, tt.oid)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("Localpart = %q, %v; want %q (error %v)", got, err, tt.want, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrNotMapped) {
				t.Fatalf("error %v does not wrap ErrNotMapped", err)
			}
		})
	}
}

func TestMappingValidate(t *testing.T) {
	tests := []struct {
		name string
		m    MappingConfig
		want string
	}{
		{"table mode without entries is refused", MappingConfig{}, "mapping.users"},
		{"an unknown mode is refused", MappingConfig{Mode: "sub"}, "mapping.mode"},
		{"an invalid localpart is refused", MappingConfig{Users: []MappedUser{{TelematikID: "x", Localpart: "Dr Arzt"}}}, "mapping.users[0].localpart"},
		{"a duplicate entry is refused", MappingConfig{Users: []MappedUser{{TelematikID: "x", Localpart: "a"}, {TelematikID: "x", Localpart: "b"}}}, "mapping.users[1]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.m.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate = %v, want an error naming %s", err, tt.want)
			}
		})
	}
}
