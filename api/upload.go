package api

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/omnichat/omnichat/channels/download"
)

// upload is a file an agent sends.
type upload struct {
	name, mediaType, caption string
	content                  []byte
}

// readUpload reads a multipart send: a "file" part and an optional "text"
// caption; nothing else. It answers the problem itself.
func (s *server) readUpload(c *gin.Context) (*upload, bool) {
	mr, err := c.Request.MultipartReader()
	if err != nil {
		problem(c, http.StatusBadRequest, "malformed multipart body: "+err.Error())
		return nil, false
	}
	var u upload
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			bindFailOrLarge(c, err)
			return nil, false
		}
		switch part.FormName() {
		case "text":
			b, err := io.ReadAll(io.LimitReader(part, 10001))
			if err != nil {
				bindFailOrLarge(c, err)
				return nil, false
			}
			if len(b) > 10000 {
				problem(c, http.StatusUnprocessableEntity, "the request has invalid fields", FieldError{Field: "text", Message: "must be at most 10000"})
				return nil, false
			}
			u.caption = string(b)
		case "file":
			if u.content != nil {
				problem(c, http.StatusBadRequest, "send one file per message", FieldError{Field: "file", Message: "appears more than once"})
				return nil, false
			}
			u.name = part.FileName()
			u.mediaType, _, _ = mime.ParseMediaType(part.Header.Get("Content-Type"))
			u.content, err = io.ReadAll(io.LimitReader(part, s.MaxUploadBytes+1))
			if err != nil {
				bindFailOrLarge(c, err)
				return nil, false
			}
			if int64(len(u.content)) > s.MaxUploadBytes {
				problem(c, http.StatusRequestEntityTooLarge, fmt.Sprintf("the file is larger than %d bytes", s.MaxUploadBytes))
				return nil, false
			}
		default:
			problem(c, http.StatusBadRequest, "unknown field "+part.FormName(), FieldError{Field: part.FormName(), Message: "is not a field of this request"})
			return nil, false
		}
	}
	switch {
	case u.content == nil:
		problem(c, http.StatusUnprocessableEntity, "the request has invalid fields", FieldError{Field: "file", Message: "is required"})
		return nil, false
	case len(u.content) == 0:
		problem(c, http.StatusUnprocessableEntity, "the request has invalid fields", FieldError{Field: "file", Message: "is empty"})
		return nil, false
	case !download.Allowed(u.mediaType, download.DefaultMediaTypes):
		problem(c, http.StatusUnsupportedMediaType, "files of type "+u.mediaType+" cannot be sent")
		return nil, false
	}
	if u.name == "" {
		u.name = "file"
	}
	return &u, true
}

func bindFailOrLarge(c *gin.Context, err error) {
	var maxBytes *http.MaxBytesError
	if errors.As(err, &maxBytes) {
		fail(c, err)
		return
	}
	problem(c, http.StatusBadRequest, "malformed multipart body: "+err.Error())
}
