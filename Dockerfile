# syntax=docker/dockerfile:1
#
# tbsim in a container: a static binary (no libc, CGO_ENABLED=0) on
# distroless/static, running as the non-root user 65532, with the fleet's
# state under the volume /state.
#
#   docker build -t tbsim .
#   docker run --rm -v tbsim-state:/state tbsim run --devices 100 --duration 1m --json /state/summary.json
#   docker run --rm -e TBSIM_PROVISION_KEY=... -e TBSIM_PROVISION_SECRET=... -v tbsim-state:/state \
#     tbsim run --server mqtts://tb.example.com:8883 --devices 500 --ramp 100/s
#
# Every flag of run and server can be set as a TBSIM_ variable (-e), which is
# how the Kubernetes sample (deploy/k8s/) passes secrets.

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION} AS build
WORKDIR /src
# Modules first: a source change does not download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# A build from a context without .git has no VCS revision: pass them in.
#   docker build --build-arg VERSION=v1.2.3 --build-arg REVISION=$(git rev-parse HEAD) -t tbsim .
ARG VERSION=""
ARG REVISION=""
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w -X github.com/tbsim/tbsim/internal/version.version=${VERSION} -X github.com/tbsim/tbsim/internal/version.revision=${REVISION}" -o /out/tbsim ./cmd/tbsim
# The state directory, owned by the user the final stage runs as: a named
# volume mounted on it starts with this ownership.
RUN mkdir -p /out/state && chown 65532:65532 /out/state

# distroless/static: CA certificates (mqtts to a real ThingsBoard), tzdata,
# /etc/passwd with "nonroot", and no shell or package manager (about 2 MB).
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/tbsim /usr/local/bin/tbsim
COPY --from=build --chown=65532:65532 /out/state /state
USER 65532:65532
WORKDIR /state
VOLUME ["/state"]
# tbsim run keeps NVS, flash and the embedded server's state here; tbsim
# server its state file.
ENV TBSIM_STATE_DIR=/state TBSIM_STATE=/state/tbsim-server.db
# MQTT, REST (tbsim server), Prometheus (tbsim run --metrics :9100).
EXPOSE 1883 8080 9100
ENTRYPOINT ["/usr/local/bin/tbsim"]
CMD ["--help"]
