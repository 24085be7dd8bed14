# The gateway as a container: complaint-graph serve, as a non-root user.
#   docker build -t complaint-graph .
#   docker run -p 8000:8000 -v $PWD/config.yaml:/etc/complaint-graph/config.yaml:ro complaint-graph
# Arguments after the image name replace CMD, e.g. `--config /etc/complaint-graph/config.yaml
# --host 0.0.0.0 --workers 4`. Secrets go in as environment variables (${VAR} in the file).
FROM python:3.11-slim AS build
WORKDIR /src
# The runtime releases requirements-runtime.lock pins (hash-checked; the same pins as the
# suite's requirements.lock), then the project itself without resolving anything again.
COPY requirements-runtime.lock ./
RUN pip install --no-cache-dir --prefix=/install --require-hashes -r requirements-runtime.lock
COPY pyproject.toml README.md LICENSE ./
COPY gateway gateway
COPY resolvers resolvers
COPY sources sources
COPY samples samples
# No extras: the demo's embedded PostgreSQL (complaint-graph[demo]) stays out of the image.
RUN pip install --no-cache-dir --prefix=/install --no-deps .

FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
RUN useradd --system --uid 10001 --create-home --home-dir /var/lib/complaint-graph complaint-graph
COPY --from=build /install /usr/local
USER complaint-graph
# The working directory is the user's own: a relative API key store (auth.key_store) lives here.
WORKDIR /var/lib/complaint-graph
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
ENTRYPOINT ["complaint-graph", "serve"]
CMD ["--config", "/etc/complaint-graph/config.yaml", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
