# Registry tools: the MLflow server (basic auth, PostgreSQL, proxied artifacts) and `gsco-registry`.
# Build from the repository root: docker build -f deploy/docker/registry.Dockerfile -t gsco-registry .
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/gsco
ENV PATH=/opt/gsco/bin:$PATH
# The project depends on torch (CPU wheel here); the registry itself never imports it.
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.14.1 torchvision==0.29.1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY gsco_common gsco_common
COPY registry registry
COPY specialist specialist
COPY site_agent site_agent
COPY gsco_runtime gsco_runtime
COPY hub hub
RUN pip install . boto3

FROM python:3.11-slim AS runtime
RUN useradd --system --uid 10001 --create-home --home-dir /var/lib/gsco gsco
COPY --from=build /opt/gsco /opt/gsco
ENV PATH=/opt/gsco/bin:$PATH GSCO_HOME=/var/lib/gsco MLFLOW_DISABLE_TELEMETRY=true
USER 10001:10001
WORKDIR /var/lib/gsco
EXPOSE 5000
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:5000/health', timeout=4)"]
ENTRYPOINT ["mlflow"]
CMD ["server", "--app-name", "basic-auth", "--host", "0.0.0.0", "--port", "5000", "--serve-artifacts"]
