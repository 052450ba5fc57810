package api

import (
	"context"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
)

// The admin API (CanManageChats): one file per resource; these helpers are
// the shape every admin handler shares.

// idParam parses a UUID path parameter, answering 404 when it is not one.
func idParam(c *gin.Context, name string) (uuid.UUID, bool) {
	id, err := uuid.Parse(c.Param(name))
	if err != nil {
		problem(c, http.StatusNotFound, name+" is not a known ID")
		return uuid.Nil, false
	}
	return id, true
}

// idParams parses two UUID path parameters.
func idParams(c *gin.Context, a, b string) (uuid.UUID, uuid.UUID, bool) {
	first, ok := idParam(c, a)
	if !ok {
		return uuid.Nil, uuid.Nil, false
	}
	second, ok := idParam(c, b)
	return first, second, ok
}

// respond answers v with status, or the error's problem.
func respond[T any](c *gin.Context, status int, v T, err error) {
	if err != nil {
		fail(c, err)
		return
	}
	if status == http.StatusNoContent {
		c.Status(status)
		return
	}
	c.JSON(status, v)
}

// listAll answers GET on a collection of any admin resource.
func listAll[T, D any](c *gin.Context, load func(context.Context) ([]T, error), dto func(*T) D) {
	vs, err := load(c.Request.Context())
	respond(c, http.StatusOK, mapSlice(vs, dto), err)
}

// createOne answers POST on a collection: bind the body into R, then create.
func createOne[R, T, D any](c *gin.Context, create func(context.Context, *R) (*T, error), dto func(*T) D) {
	var req R
	if !bindJSON(c, &req) {
		return
	}
	v, err := create(c.Request.Context(), &req)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, dto(v))
}

// getOne answers GET /{id} for any admin resource.
func getOne[T, D any](c *gin.Context, load func(context.Context, uuid.UUID) (*T, error), dto func(*T) D) {
	id, ok := idParam(c, "id")
	if !ok {
		return
	}
	v, err := load(c.Request.Context(), id)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, dto(v))
}

// deleteOne answers DELETE /{id} for any admin resource.
func deleteOne(c *gin.Context, del func(context.Context, uuid.UUID) error) {
	id, ok := idParam(c, "id")
	if !ok {
		return
	}
	respond(c, http.StatusNoContent, 0, del(c.Request.Context(), id))
}

// deletePair answers DELETE /{id}/.../{other} for a link between two resources.
func deletePair(c *gin.Context, other string, del func(context.Context, uuid.UUID, uuid.UUID) error) {
	id, otherID, ok := idParams(c, "id", other)
	if !ok {
		return
	}
	respond(c, http.StatusNoContent, 0, del(c.Request.Context(), id, otherID))
}

// patchOne answers PATCH /{id}: bind the body into P, then update.
func patchOne[P, T, D any](c *gin.Context, update func(context.Context, uuid.UUID, *P) (*T, error), dto func(*T) D) {
	id, ok := idParam(c, "id")
	if !ok {
		return
	}
	var req P
	if !bindJSON(c, &req) {
		return
	}
	v, err := update(c.Request.Context(), id, &req)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, dto(v))
}

func mapSlice[A, B any](as []A, f func(*A) B) []B {
	out := make([]B, 0, len(as))
	for i := range as {
		out = append(out, f(&as[i]))
	}
	return out
}
