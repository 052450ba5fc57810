package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/gin-gonic/gin/binding"
	"github.com/go-playground/validator/v10"

	"github.com/omnichat/omnichat/channels"
	"github.com/omnichat/omnichat/domain"
	"github.com/omnichat/omnichat/service"
)

// FieldError names one field that failed validation.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Problem is an RFC 9457 problem document.
type Problem struct {
	Type   string       `json:"type"`
	Title  string       `json:"title"`
	Status int          `json:"status"`
	Detail string       `json:"detail,omitempty"`
	Errors []FieldError `json:"errors"`
	// RequestID names the request in omnichat's logs.
	RequestID string `json:"request_id,omitempty"`
}

func problem(c *gin.Context, status int, detail string, fields ...FieldError) {
	if fields == nil {
		fields = []FieldError{}
	}
	title := http.StatusText(status)
	c.Header("Content-Type", "application/problem+json")
	c.AbortWithStatusJSON(status, Problem{
		Type:      "urn:omnichat:problem:" + strings.ReplaceAll(strings.ToLower(title), " ", "-"),
		Title:     title,
		Status:    status,
		Detail:    detail,
		Errors:    fields,
		RequestID: c.GetString(requestIDKey),
	})
}

// fail maps an error to its one status code: the only place that does so.
func fail(c *gin.Context, err error) {
	var maxBytes *http.MaxBytesError
	var perr *channels.PermanentError
	var fields *domain.FieldsError
	switch {
	case errors.As(err, &maxBytes):
		problem(c, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is larger than %d bytes", maxBytes.Limit))
	case errors.Is(err, domain.ErrUnavailable):
		loggerFrom(c).WarnContext(c.Request.Context(), "dependency unavailable", "path", c.FullPath(), "error", err)
		c.Header("Retry-After", retryAfterSeconds)
		problem(c, http.StatusServiceUnavailable, "omnichat cannot do this right now (a database or workflow engine is unavailable); retry later")
	case errors.Is(err, service.ErrNoChallenge):
		problem(c, http.StatusMethodNotAllowed, err.Error())
	case errors.As(err, &fields):
		status := http.StatusUnprocessableEntity
		if fields.BadRequest {
			status = http.StatusBadRequest
		} else if fields.Conflict {
			status = http.StatusConflict
		}
		fes := make([]FieldError, len(fields.Fields))
		for i, f := range fields.Fields {
			fes[i] = FieldError{Field: f.Field, Message: f.Message}
		}
		problem(c, status, fields.Error(), fes...)
	case errors.Is(err, domain.ErrNotFound):
		problem(c, http.StatusNotFound, err.Error())
	case errors.Is(err, domain.ErrConflict):
		problem(c, http.StatusConflict, err.Error())
	case errors.Is(err, domain.ErrForbidden):
		problem(c, http.StatusForbidden, err.Error())
	case errors.Is(err, domain.ErrInvalid), errors.Is(err, channels.ErrInvalidConfig):
		problem(c, http.StatusUnprocessableEntity, err.Error())
	case errors.Is(err, channels.ErrBadSignature):
		problem(c, http.StatusUnauthorized, "webhook signature is missing or wrong")
	case errors.Is(err, channels.ErrBadPayload):
		problem(c, http.StatusBadRequest, err.Error())
	case errors.As(err, &perr):
		problem(c, http.StatusUnprocessableEntity, perr.Reason)
	default:
		loggerFrom(c).ErrorContext(c.Request.Context(), "request failed", "path", c.FullPath(), "error", err)
		problem(c, http.StatusInternalServerError, "internal error")
	}
}

// retryAfterSeconds is what a 503 asks callers (and providers) to wait.
const retryAfterSeconds = "5"

func init() {
	// Mass assignment guard: a body with a field the DTO does not have is refused.
	binding.EnableDecoderDisallowUnknownFields = true
	if v, ok := binding.Validator.Engine().(*validator.Validate); ok {
		v.RegisterTagNameFunc(func(f reflect.StructField) string {
			for _, tag := range []string{"json", "form"} {
				if name := strings.Split(f.Tag.Get(tag), ",")[0]; name != "" && name != "-" {
					return name
				}
			}
			return f.Name
		})
	}
}

// bindJSON decodes and validates a JSON body, answering the problem itself;
// it reports whether the handler may go on.
func bindJSON(c *gin.Context, dst any) bool {
	if ct := c.ContentType(); ct != "application/json" {
		problem(c, http.StatusUnsupportedMediaType, "Content-Type must be application/json")
		return false
	}
	if err := c.ShouldBindJSON(dst); err != nil {
		bindFail(c, err)
		return false
	}
	return true
}

// bindQuery decodes and validates query parameters.
func bindQuery(c *gin.Context, dst any) bool {
	if err := c.ShouldBindQuery(dst); err != nil {
		bindFail(c, err)
		return false
	}
	return true
}

func bindFail(c *gin.Context, err error) {
	var ves validator.ValidationErrors
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var maxBytes *http.MaxBytesError
	switch {
	case errors.As(err, &maxBytes):
		fail(c, err)
	case errors.As(err, &ves):
		fields := make([]FieldError, 0, len(ves))
		for _, fe := range ves {
			fields = append(fields, FieldError{Field: fieldPath(fe), Message: describe(fe)})
		}
		problem(c, http.StatusUnprocessableEntity, "the request has invalid fields", fields...)
	case errors.As(err, &syntax), errors.Is(err, io.ErrUnexpectedEOF):
		problem(c, http.StatusBadRequest, "malformed JSON: "+err.Error())
	case errors.As(err, &typ):
		problem(c, http.StatusBadRequest, "wrong type for a field", FieldError{Field: typ.Field, Message: "must be " + typ.Type.String()})
	case errors.Is(err, io.EOF):
		problem(c, http.StatusBadRequest, "request body is empty")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		problem(c, http.StatusBadRequest, "unknown field "+name, FieldError{Field: name, Message: "is not a field of this request"})
	default:
		problem(c, http.StatusBadRequest, err.Error())
	}
}

func fieldPath(fe validator.FieldError) string {
	ns := fe.Namespace()
	if i := strings.Index(ns, "."); i >= 0 {
		return ns[i+1:]
	}
	return fe.Field()
}

func describe(fe validator.FieldError) string {
	switch fe.Tag() {
	case "required":
		return "is required"
	case "min":
		return "must be at least " + fe.Param()
	case "max":
		return "must be at most " + fe.Param()
	case "oneof":
		return "must be one of: " + fe.Param()
	case "uuid":
		return "must be a UUID"
	case "email":
		return "must be an email address"
	case "gt":
		return "must be greater than " + fe.Param()
	case "url":
		return "must be a URL"
	case "required_without", "excluded_with":
		return "give exactly one of " + fe.Field() + " and " + fe.Param()
	}
	return "fails " + fe.Tag()
}
