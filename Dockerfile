# omnichat: one static binary; the same image runs `all`, `serve`, `worker` or `migrate`.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /out/omnichat ./cmd/omnichat

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/omnichat /omnichat
EXPOSE 8080 9090
ENTRYPOINT ["/omnichat"]
CMD ["all"]
