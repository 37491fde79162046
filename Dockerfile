# syntax=docker/dockerfile:1
# A small static image of sisbridge: built in a Go image, run from a
# distroless one (no shell, no package manager), as a non-root user.

FROM golang:1.26-alpine AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w -X main.version=${VERSION}" -o /out/sisbridge ./cmd/sisbridge \
 && mkdir -p /out/config /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/sisbridge /sisbridge
# Owned by the user the image runs as: a named volume mounted here starts
# with this ownership, so `sisbridge nats-config --out /config` can write.
COPY --from=build --chown=65532:65532 /out/config /config
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
EXPOSE 8080 8091
ENTRYPOINT ["/sisbridge"]
CMD ["help"]
