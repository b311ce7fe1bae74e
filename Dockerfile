# Evergraph for the compose stack (docker-compose.yml): the CLI and server with the Neo4j driver
# and the offline embedding model. The CPU build of torch comes from PyTorch's own index (PyPI's
# torch is the multi-GB CUDA build); that index is used here only, never by setup.sh.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 \
    EVERGRAPH_HOME=/data

WORKDIR /app
COPY pyproject.toml README.md ./
COPY evergraph ./evergraph
RUN pip install --extra-index-url https://download.pytorch.org/whl/cpu '.[neo4j,embed,server]'
COPY examples ./examples

RUN useradd --create-home --uid 1000 evergraph \
    && mkdir -p /data && chown evergraph:evergraph /data
USER evergraph
VOLUME ["/data"]

CMD ["evergraph", "--help"]
