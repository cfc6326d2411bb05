# The hub: `gsco-hub serve` (HTTP API, web page) and the Flower SuperLink (same image, other command).
# Build from the repository root: docker build -f deploy/docker/hub.Dockerfile -t gsco-hub .
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/gsco
ENV PATH=/opt/gsco/bin:$PATH
# CPU wheels: the hub serves ONNX; torch is only needed to build the federated model's bundle.
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
EXPOSE 8080 9092
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]
ENTRYPOINT ["gsco-hub"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]
