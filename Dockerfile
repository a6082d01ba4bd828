# Builds both Portcullis binaries into one small, non-root image.
#   docker build -t portcullis .
#   docker run portcullis issuer serve --config /etc/portcullis/issuer.yaml
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# Static binaries: the SQLite driver is pure Go, so no cgo is needed.
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/authz ./cmd/authz && \
    CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/issuer ./cmd/issuer && \
    mkdir -p /out/state /out/run

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/authz /out/issuer /usr/local/bin/
COPY examples/policy /etc/portcullis/policy
COPY examples/users /etc/portcullis/users
COPY examples/compose/authz.yaml /etc/portcullis/authz.yaml
COPY examples/compose/issuer.yaml /etc/portcullis/issuer.yaml
# The issuer's SQLite store and keys; owned by the non-root user so a named
# volume mounted here is writable.
COPY --from=build --chown=65532:65532 /out/state /var/lib/portcullis
# Secrets handed between processes (authz's feed client secret in compose);
# a named volume mounted here starts owned by the non-root user.
COPY --from=build --chown=65532:65532 /out/run /run/portcullis
USER 65532:65532
WORKDIR /var/lib/portcullis
ENTRYPOINT []
