package query

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"net/http"
)

// Error is an EC2 API error: the code and message EC2 puts in the envelope and the HTTP
// status it answers with.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("%s (%d): %s", e.Code, e.Status, e.Message) }

// NewError builds an error with EC2's HTTP status for code: 400 for client errors unless
// StatusFor says otherwise.
func NewError(code, msg string) *Error {
	return &Error{Status: StatusFor(code), Code: code, Message: msg}
}

// StatusFor is the HTTP status EC2 uses for an error code. Observed in EC2 answers:
// AuthFailure 401; UnauthorizedOperation/SignatureDoesNotMatch 403; DryRunOperation 412;
// RequestLimitExceeded and Unavailable 503; InternalError and InsufficientInstanceCapacity
// (a server error code in EC2's error table) 500; every other client error 400.
func StatusFor(code string) int {
	switch code {
	case "AuthFailure", "MissingAuthenticationToken":
		return http.StatusUnauthorized
	case "UnauthorizedOperation", "SignatureDoesNotMatch", "IncompleteSignature", "InvalidClientTokenId", "OptInRequired":
		return http.StatusForbidden
	case "DryRunOperation":
		return http.StatusPreconditionFailed
	case "RequestLimitExceeded", "Unavailable", "ServiceUnavailable":
		return http.StatusServiceUnavailable
	case "InternalError", "InsufficientInstanceCapacity", "InsufficientAddressCapacity", "InsufficientHostCapacity", "InsufficientReservedInstanceCapacity", "InsufficientCapacity":
		return http.StatusInternalServerError
	}
	return http.StatusBadRequest
}

// Common errors, with EC2's wording where it is well known.
func ErrInvalidParameterValue(msg string) *Error { return NewError("InvalidParameterValue", msg) }
func ErrMissingParameter(name string) *Error {
	return NewError("MissingParameter", fmt.Sprintf("The request must contain the parameter %s", name))
}
func ErrMalformedQueryString(msg string) *Error { return NewError("MalformedQueryString", msg) }
func ErrDryRun() *Error {
	return NewError("DryRunOperation", "Request would have succeeded, but DryRun flag is set.")
}

// ResponseMeta is embedded in every response body; it carries the requestId element.
type ResponseMeta struct {
	RequestID string `xml:"requestId"`
}

// SetRequestID lets the encoder fill the request id.
func (m *ResponseMeta) SetRequestID(id string) { m.RequestID = id }

// Body is a response body: a struct with xml tags that embeds ResponseMeta.
type Body interface{ SetRequestID(string) }

// EncodeResponse renders <ActionResponse xmlns="..."><requestId>..</requestId>...</ActionResponse>.
func EncodeResponse(action, requestID string, body Body) ([]byte, error) {
	body.SetRequestID(requestID)
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	enc := xml.NewEncoder(&buf)
	start := xml.StartElement{
		Name: xml.Name{Local: action + "Response"},
		Attr: []xml.Attr{{Name: xml.Name{Local: "xmlns"}, Value: XMLNamespace}},
	}
	if err := enc.EncodeElement(body, start); err != nil {
		return nil, fmt.Errorf("encoding %s response: %w", action, err)
	}
	if err := enc.Flush(); err != nil {
		return nil, fmt.Errorf("encoding %s response: %w", action, err)
	}
	return buf.Bytes(), nil
}

type errorEnvelope struct {
	XMLName   xml.Name    `xml:"Response"`
	Errors    []errorElem `xml:"Errors>Error"`
	RequestID string      `xml:"RequestID"`
}

type errorElem struct {
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}

// EncodeError renders EC2's error envelope.
func EncodeError(e *Error, requestID string) []byte {
	b, err := xml.Marshal(errorEnvelope{Errors: []errorElem{{Code: e.Code, Message: e.Message}}, RequestID: requestID})
	if err != nil { // cannot happen for strings; keep the envelope valid anyway
		return []byte("<Response><Errors><Error><Code>InternalError</Code><Message></Message></Error></Errors><RequestID></RequestID></Response>")
	}
	return append([]byte(xml.Header), b...)
}

// WriteXML writes an XML payload with the status.
func WriteXML(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// WriteError writes the error envelope with e's status.
func WriteError(w http.ResponseWriter, e *Error, requestID string) {
	WriteXML(w, e.Status, EncodeError(e, requestID))
}
