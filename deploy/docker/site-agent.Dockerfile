# A hospital site: `site-agent` (import, train, export, publish) and its Flower SuperNode.
# Build from the repository root: docker build -f deploy/docker/site-agent.Dockerfile -t gsco-site-agent .
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/gsco
ENV PATH=/opt/gsco/bin:$PATH
# CPU wheels; a GPU site builds FROM an nvidia/cuda base with the default torch index instead.
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.14.1 torchvision==0.29.1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY gsco_common gsco_common
COPY registry registry
COPY specialist specialist
COPY site_agent site_agent
COPY gsco_runtime gsco_runtime
COPY hub hub
RUN pip install .

FROM python:3.11-slim AS runtime
RUN useradd --system --uid 10001 --create-home --home-dir /var/lib/gsco gsco
COPY --from=build /opt/gsco /opt/gsco
ENV PATH=/opt/gsco/bin:$PATH GSCO_HOME=/var/lib/gsco \
    FLWR_TELEMETRY_ENABLED=0 FLWR_DISABLE_UPDATE_CHECK=1 MLFLOW_DISABLE_TELEMETRY=true ORT_DISABLE_TELEMETRY=1
USER 10001:10001
WORKDIR /var/lib/gsco
HEALTHCHECK --interval=60s --timeout=10s CMD ["site-agent", "--help"]
ENTRYPOINT ["site-agent"]
CMD ["--help"]
