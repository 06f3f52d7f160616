package fhir

// Code systems, identifier systems and extension URLs of gematik's VZD profiles (spec §2).
const (
	SystemOrigin         = "https://gematik.de/fhir/directory/CodeSystem/Origin"
	SystemResourceTag    = "https://gematik.de/fhir/directory/CodeSystem/ResourceTag"
	SystemConnectionType = "https://gematik.de/fhir/directory/CodeSystem/EndpointDirectoryConnectionType"
	SystemHL7ConnType    = "http://terminology.hl7.org/CodeSystem/endpoint-connection-type"
	SystemPayloadType    = "https://gematik.de/fhir/directory/CodeSystem/EndpointDirectoryPayloadType"
	SystemHolder         = "https://gematik.de/fhir/directory/CodeSystem/HolderCS"

	SystemTelematikID = "https://gematik.de/fhir/sid/telematik-id"
	SystemLANR        = "https://fhir.kbv.de/NamingSystem/KBV_NS_Base_ANR"
	SystemBSNR        = "https://fhir.kbv.de/NamingSystem/KBV_NS_Base_BSNR"
	SystemKZVA        = "http://fhir.de/sid/kzbv/kzvabrechnungsnummer"
	SystemIKNR        = "http://fhir.de/sid/arge-ik/iknr"

	ExtHolderID               = "https://gematik.de/fhir/directory/StructureDefinition/holder-id-ex"
	ExtOwnerTelematikID       = "https://gematik.de/fhir/directory/StructureDefinition/OwnerTelematikIdEx"
	ExtEndpointVisibility     = "https://gematik.de/fhir/directory/StructureDefinition/EndpointVisibility"
	ExtOrganizationVisibility = "https://gematik.de/fhir/directory/StructureDefinition/OrganizationVisibility"
	ExtNCPeHCountry           = "https://gematik.de/fhir/ti/StructureDefinition/ncpeh-country-extension"
	ExtCoveragePostalCode     = "https://gematik.de/fhir/directory/StructureDefinition/ServiceCoveragePostalCode"
	ExtKimVersion             = "https://gematik.de/fhir/directory/StructureDefinition/ConnectionTypeKimVersionEx"
	ExtResultsFiltered        = "https://gematik.de/fhir/directory/StructureDefinition/results-filtered-ex"

	// PayloadTIMChat is the payload type every TI-Messenger endpoint carries.
	PayloadTIMChat = "tim-chat"
)

// OriginCodes are the codes of the Origin code system: who wrote the resource.
var originCodes = map[string]bool{"ldap": true, "owner": true, "apo": true}

// connectionTypes is EndpointConnectionTypeVS expanded: gematik's EndpointDirectoryConnectionType (from
// CodeSystem-EndpointDirectoryConnectionType.json, plus kim-1.0/kim-1.5/kim-2.0 of the develop branch, which
// replace "kim" there; both are accepted, spec §10) and the HL7 R4 endpoint-connection-type codes the value
// set includes (ValueSet-EndpointConnectionTypeVS.json includes the whole code system).
var connectionTypes = map[string]map[string]bool{
	SystemConnectionType: {
		"tim": true, "tim-fa": true, "tim-bot": true,
		"kim": true, "kim-1.0": true, "kim-1.5": true, "kim-2.0": true,
		"epa-supported": true, "ident-eingangsabruf": true, "apotheken-identverfahren": true,
		"eRP-onPremise": true, "eRP-delivery": true, "eRP-shipment": true, "eRP-availability": true,
		"terminbuchung-online": true, "terminbuchung-telefonisch": true, "terminbuchung-tim": true,
	},
	SystemHL7ConnType: {
		"ihe-xcpd": true, "ihe-xca": true, "ihe-xdr": true, "ihe-xds": true, "ihe-iid": true,
		"dicom-wado-rs": true, "dicom-qido-rs": true, "dicom-stow-rs": true, "dicom-wado-uri": true,
		"hl7-fhir-rest": true, "hl7-fhir-msg": true, "hl7v2-mllp": true, "secure-email": true,
		"direct-project": true,
	},
}

// endpointStatuses is the required binding of Endpoint.status.
var endpointStatuses = map[string]bool{
	"active": true, "suspended": true, "error": true, "off": true, "entered-in-error": true, "test": true,
}

// textIdentifierSystems are the identifier systems whose values feed _text (spec §3.2: TelematikID, BSNR,
// KZVA, IKNR). Other identifiers (e.g. the random us-npi UUIDs of TU data) would only add noise.
var textIdentifierSystems = map[string]bool{
	SystemTelematikID: true, SystemBSNR: true, SystemKZVA: true, SystemIKNR: true,
}
