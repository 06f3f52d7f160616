package fhir

// View is the typed view of one of the six directory resource types: *Practitioner, *PractitionerRole,
// *Organization, *HealthcareService, *Location or *Endpoint.
type View interface {
	// Base returns the elements every directory resource shares.
	Base() *DomainResource
}

// DomainResource holds the elements shared by all six types.
type DomainResource struct {
	ID        string      `json:"id,omitempty"`
	Meta      *Meta       `json:"meta,omitempty"`
	Text      *Narrative  `json:"text,omitempty"`
	Extension []Extension `json:"extension,omitempty"`
}

// Base implements View.
func (d *DomainResource) Base() *DomainResource { return d }

// Practitioner is the view of PractitionerDirectory.
type Practitioner struct {
	DomainResource
	Identifier    []Identifier    `json:"identifier,omitempty"`
	Active        *bool           `json:"active,omitempty"`
	Name          []HumanName     `json:"name,omitempty"`
	Telecom       []ContactPoint  `json:"telecom,omitempty"`
	Address       []Address       `json:"address,omitempty"`
	Gender        string          `json:"gender,omitempty"`
	BirthDate     string          `json:"birthDate,omitempty"`
	Qualification []Qualification `json:"qualification,omitempty"`
}

// Qualification is Practitioner.qualification.
type Qualification struct {
	Identifier []Identifier    `json:"identifier,omitempty"`
	Code       CodeableConcept `json:"code"`
	Period     *Period         `json:"period,omitempty"`
	Issuer     *Reference      `json:"issuer,omitempty"`
}

// PractitionerRole is the view of PractitionerRoleDirectory.
type PractitionerRole struct {
	DomainResource
	Identifier        []Identifier      `json:"identifier,omitempty"`
	Active            *bool             `json:"active,omitempty"`
	Period            *Period           `json:"period,omitempty"`
	Practitioner      *Reference        `json:"practitioner,omitempty"`
	Organization      *Reference        `json:"organization,omitempty"`
	Code              []CodeableConcept `json:"code,omitempty"`
	Specialty         []CodeableConcept `json:"specialty,omitempty"`
	Location          []Reference       `json:"location,omitempty"`
	HealthcareService []Reference       `json:"healthcareService,omitempty"`
	Telecom           []ContactPoint    `json:"telecom,omitempty"`
	Endpoint          []Reference       `json:"endpoint,omitempty"`
}

// Organization is the view of OrganizationDirectory.
type Organization struct {
	DomainResource
	Identifier []Identifier      `json:"identifier,omitempty"`
	Active     *bool             `json:"active,omitempty"`
	Type       []CodeableConcept `json:"type,omitempty"`
	Name       string            `json:"name,omitempty"`
	Alias      []string          `json:"alias,omitempty"`
	Telecom    []ContactPoint    `json:"telecom,omitempty"`
	Address    []Address         `json:"address,omitempty"`
	PartOf     *Reference        `json:"partOf,omitempty"`
	Endpoint   []Reference       `json:"endpoint,omitempty"`
}

// HealthcareService is the view of HealthcareServiceDirectory. Opening times are not modelled: nothing is
// indexed from them yet.
type HealthcareService struct {
	DomainResource
	Identifier             []Identifier      `json:"identifier,omitempty"`
	Active                 *bool             `json:"active,omitempty"`
	ProvidedBy             *Reference        `json:"providedBy,omitempty"`
	Category               []CodeableConcept `json:"category,omitempty"`
	Type                   []CodeableConcept `json:"type,omitempty"`
	Specialty              []CodeableConcept `json:"specialty,omitempty"`
	Location               []Reference       `json:"location,omitempty"`
	Name                   string            `json:"name,omitempty"`
	Comment                string            `json:"comment,omitempty"`
	Telecom                []ContactPoint    `json:"telecom,omitempty"`
	CoverageArea           []Reference       `json:"coverageArea,omitempty"`
	Characteristic         []CodeableConcept `json:"characteristic,omitempty"`
	Communication          []CodeableConcept `json:"communication,omitempty"`
	AppointmentRequired    *bool             `json:"appointmentRequired,omitempty"`
	AvailabilityExceptions string            `json:"availabilityExceptions,omitempty"`
	Endpoint               []Reference       `json:"endpoint,omitempty"`
}

// Location is the view of LocationDirectory. FHIR R4 Location.address is a single Address.
type Location struct {
	DomainResource
	Identifier           []Identifier `json:"identifier,omitempty"`
	Status               string       `json:"status,omitempty"`
	Name                 string       `json:"name,omitempty"`
	Alias                []string     `json:"alias,omitempty"`
	Description          string       `json:"description,omitempty"`
	Address              *Address     `json:"address,omitempty"`
	Position             *Position    `json:"position,omitempty"`
	ManagingOrganization *Reference   `json:"managingOrganization,omitempty"`
	PartOf               *Reference   `json:"partOf,omitempty"`
}

// Position is Location.position (WGS84). Pointers tell a missing coordinate from 0.
type Position struct {
	Longitude *float64 `json:"longitude,omitempty"`
	Latitude  *float64 `json:"latitude,omitempty"`
	Altitude  *float64 `json:"altitude,omitempty"`
}

// Endpoint is the view of EndpointDirectory.
type Endpoint struct {
	DomainResource
	Identifier           []Identifier      `json:"identifier,omitempty"`
	Status               string            `json:"status,omitempty"`
	ConnectionType       *Coding           `json:"connectionType,omitempty"`
	Name                 string            `json:"name,omitempty"`
	ManagingOrganization *Reference        `json:"managingOrganization,omitempty"`
	Period               *Period           `json:"period,omitempty"`
	PayloadType          []CodeableConcept `json:"payloadType,omitempty"`
	PayloadMimeType      []string          `json:"payloadMimeType,omitempty"`
	Address              string            `json:"address,omitempty"`
	Header               []string          `json:"header,omitempty"`
}
