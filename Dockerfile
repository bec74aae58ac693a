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
      -o /out/switchyard ./cmd/switchyard

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/switchyard /usr/local/bin/switchyard
COPY configs/switchyard.example.yaml /etc/switchyard/switchyard.example.yaml
# Mount the real config here (a file, a ConfigMap or a Docker config); ${ENV} references in it are
# filled from the container's environment.
ENV SWITCHYARD_CONFIG=/etc/switchyard/switchyard.yaml
# REST (OpenAI-compatible), gRPC, admin (/metrics /healthz /readyz /debug/pprof/)
EXPOSE 8080 9090 8081
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/switchyard"]
CMD ["serve"]
