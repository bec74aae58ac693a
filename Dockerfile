# syntax=docker/dockerfile:1
# Switchyard container image: a static binary on distroless, running as a non-root user.
#
#   docker build --build-arg VERSION=$(git describe --tags --always) -t switchyard .
#   docker run -v $PWD/my.yaml:/etc/switchyard/switchyard.yaml:ro -e OPENAI_API_KEY -e SWITCHYARD_API_KEY \
#     -p 8080:8080 -p 9090:9090 -p 127.0.0.1:8081:8081 switchyard
#
# Health: the runtime image has no shell or curl, so there is no HEALTHCHECK. Probe the admin port
# instead: GET :8081/healthz (liveness: the process is up) and GET :8081/readyz (readiness: 503 while
# starting or draining). deploy/kubernetes/deployment.yaml shows both probes.

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -buildvcs=false \
      -ldflags "-s -w -X github.com/switchyard/switchyard/internal/app.Version=${VERSION}" \
      -o /out/switchyard ./cmd/switchyard && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/switchyard /usr/local/bin/switchyard
COPY configs/switchyard.example.yaml /etc/switchyard/switchyard.example.yaml
# Mount the real config here (a file, a ConfigMap or a Docker config); ${ENV} references in it are
# filled from the container's environment.
ENV SWITCHYARD_CONFIG=/etc/switchyard/switchyard.yaml
# The audit log (on by default), managed keys and session archives default to SQLite files in
# SWITCHYARD_DATA_DIR; mount a persistent volume here, or point their sql sections at PostgreSQL.
COPY --from=build --chown=nonroot:nonroot /out/data /data
ENV SWITCHYARD_DATA_DIR=/data
VOLUME /data
# REST (OpenAI-compatible), gRPC, admin (/metrics /healthz /readyz /debug/pprof/)
EXPOSE 8080 9090 8081
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/switchyard"]
CMD ["serve"]
