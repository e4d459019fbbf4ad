package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/sluice-llm/sluice/engine"
	"github.com/sluice-llm/sluice/tokenizer/template"
)

// statusClientClosed is the status logged (never seen by anyone) for a
// request whose client disconnected, as nginx's 499.
const statusClientClosed = 499

// apiError is an error with its HTTP status and OpenAI error body fields.
type apiError struct {
	Status  int
	Type    string // OpenAI error type: invalid_request_error, not_found_error, ...
	Code    string // machine-readable code; "" → null
	Param   string // offending field; "" → null
	Message string
	// RetryAfter, in seconds, is sent as the Retry-After header when > 0.
	RetryAfter int
}

func (e *apiError) Error() string { return e.Message }

func badRequest(param, format string, args ...any) *apiError {
	return &apiError{Status: http.StatusBadRequest, Type: "invalid_request_error", Param: param, Message: fmt.Sprintf(format, args...)}
}

func notFound(code, format string, args ...any) *apiError {
	return &apiError{Status: http.StatusNotFound, Type: "not_found_error", Code: code, Message: fmt.Sprintf(format, args...)}
}

func errDraining() *apiError {
	return &apiError{Status: http.StatusServiceUnavailable, Type: "service_unavailable_error", Code: "draining",
		Message: "the server is shutting down and accepts no new requests", RetryAfter: 1}
}

// errTimeout is the answer to a non-streaming request cut by its
// deadline (--request-timeout or its "timeout" field).
func errTimeout() *apiError {
	return &apiError{Status: http.StatusGatewayTimeout, Type: "timeout_error", Code: "timeout",
		Message: "the request did not finish within its deadline (the \"timeout\" field or the server's --request-timeout); it was stopped and its resources freed"}
}

// toAPIError maps an error from the engine (or the template renderer) to
// its HTTP form.
func toAPIError(err error, retryAfter int) *apiError {
	var ae *apiError
	var ire *engine.InvalidRequestError
	var te *template.TemplateError
	var tpe *template.Error
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &ire):
		return &apiError{Status: http.StatusBadRequest, Type: "invalid_request_error", Param: ire.Param, Message: ire.Error()}
	case errors.As(err, &te):
		return &apiError{Status: http.StatusBadRequest, Type: "invalid_request_error", Param: "messages", Message: te.Message}
	case errors.As(err, &tpe):
		return &apiError{Status: http.StatusBadRequest, Type: "invalid_request_error", Param: "messages", Message: "chat template: " + tpe.Error()}
	case errors.Is(err, engine.ErrOverloaded):
		return &apiError{Status: http.StatusTooManyRequests, Type: "rate_limit_error", Code: "overloaded",
			Message: "the server has too many waiting requests; retry later", RetryAfter: retryAfter}
	case errors.Is(err, engine.ErrDraining), errors.Is(err, engine.ErrClosed):
		return errDraining()
	case errors.Is(err, context.DeadlineExceeded):
		return errTimeout()
	case errors.Is(err, context.Canceled):
		// The client went away before the request started.
		return &apiError{Status: statusClientClosed, Type: "invalid_request_error", Code: "client_closed", Message: "the client closed the request"}
	}
	return &apiError{Status: http.StatusInternalServerError, Type: "server_error", Code: "internal_error", Message: err.Error()}
}

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

func (e *apiError) body() errorBody {
	d := errorDetail{Message: e.Message, Type: e.Type}
	if e.Param != "" {
		p := e.Param
		d.Param = &p
	}
	if e.Code != "" {
		c := e.Code
		d.Code = &c
	}
	return errorBody{Error: d}
}

// writeError writes err as an OpenAI error response.
func writeError(w http.ResponseWriter, err error) int {
	ae := toAPIError(err, 1)
	if ae.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(ae.RetryAfter))
	}
	writeJSON(w, ae.Status, ae.body())
	return ae.Status
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"message":"encoding the response failed","type":"server_error","param":null,"code":null}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}
