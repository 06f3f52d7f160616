package fhir

import (
	"bytes"
	"encoding/json"
)

// Severity is OperationOutcome.issue.severity.
type Severity string

// Issue severities (FHIR R4 issue-severity).
const (
	SeverityFatal       Severity = "fatal"
	SeverityError       Severity = "error"
	SeverityWarning     Severity = "warning"
	SeverityInformation Severity = "information"
)

// IssueCode is OperationOutcome.issue.code (FHIR R4 issue-type).
type IssueCode string

// Issue types used by the directory.
const (
	CodeInvalid       IssueCode = "invalid"
	CodeStructure     IssueCode = "structure"
	CodeRequired      IssueCode = "required"
	CodeValue         IssueCode = "value"
	CodeInvariant     IssueCode = "invariant"
	CodeCodeInvalid   IssueCode = "code-invalid"
	CodeNotSupported  IssueCode = "not-supported"
	CodeNotFound      IssueCode = "not-found"
	CodeLogin         IssueCode = "login"
	CodeForbidden     IssueCode = "forbidden"
	CodeConflict      IssueCode = "conflict"
	CodeDuplicate     IssueCode = "duplicate"
	CodeTooCostly     IssueCode = "too-costly"
	CodeException     IssueCode = "exception"
	CodeInformational IssueCode = "informational"
)

// Issue is one finding about a resource or request. Diagnostics is shown to the client: it may name the
// client's own element or parameter, never carry a Go error string.
type Issue struct {
	Severity    Severity
	Code        IssueCode
	Expression  string // FHIRPath-like element path, e.g. "Endpoint.address" or "Practitioner.identifier[0].value"
	Diagnostics string
}

// NewIssue returns an error-severity issue.
func NewIssue(code IssueCode, expression, diagnostics string) Issue {
	return Issue{Severity: SeverityError, Code: code, Expression: expression, Diagnostics: diagnostics}
}

// NewWarning returns a warning-severity issue: reported, but the resource is accepted.
func NewWarning(code IssueCode, expression, diagnostics string) Issue {
	return Issue{Severity: SeverityWarning, Code: code, Expression: expression, Diagnostics: diagnostics}
}

// HasErrors reports whether any issue is of severity error or fatal, i.e. whether a write must be refused.
func HasErrors(issues []Issue) bool {
	for _, is := range issues {
		if is.Severity == SeverityError || is.Severity == SeverityFatal {
			return true
		}
	}
	return false
}

type outcomeJSON struct {
	ResourceType string      `json:"resourceType"`
	Issue        []issueJSON `json:"issue"`
}

type issueJSON struct {
	Severity    Severity  `json:"severity"`
	Code        IssueCode `json:"code"`
	Diagnostics string    `json:"diagnostics,omitempty"`
	Expression  []string  `json:"expression,omitempty"`
}

// OperationOutcome renders issues as an OperationOutcome (media type application/fhir+json). FHIR requires at
// least one issue, so an empty list becomes a single informational "no issues" entry.
func OperationOutcome(issues []Issue) []byte {
	out := outcomeJSON{ResourceType: "OperationOutcome", Issue: make([]issueJSON, 0, len(issues))}
	for _, is := range issues {
		j := issueJSON{Severity: is.Severity, Code: is.Code, Diagnostics: is.Diagnostics}
		if j.Severity == "" {
			j.Severity = SeverityError
		}
		if j.Code == "" {
			j.Code = CodeException
		}
		if is.Expression != "" {
			j.Expression = []string{is.Expression}
		}
		out.Issue = append(out.Issue, j)
	}
	if len(out.Issue) == 0 {
		out.Issue = append(out.Issue, issueJSON{Severity: SeverityInformation, Code: CodeInformational, Diagnostics: "no issues"})
	}
	return marshal(out)
}

// marshal encodes values built by this package; they contain only strings, numbers and nested structs, so
// encoding cannot fail. HTML escaping is off: FHIR JSON is not embedded in HTML.
func marshal(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic("fhir: marshal: " + err.Error()) // unreachable for the package's own types
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}
