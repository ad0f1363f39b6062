# claimsieve: the HTTP service, CPU only.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 \
    CLAIMSIEVE_DATA_DIR=/data \
    CLAIMSIEVE_CACHE_DIR=/data/cache

WORKDIR /app

# Dependency layer first: it changes only when pyproject.toml does.
# torch comes from the CPU wheel index; PyPI's build of the same version pulls CUDA.
COPY pyproject.toml README.md ./
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0 \
 && python -c "import tomllib; deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; print('\n'.join(d for d in deps if not d.startswith('torch')))" > /tmp/requirements.txt
RUN pip install -r /tmp/requirements.txt

# Then the code.
COPY alembic.ini ./
COPY claims ./claims
COPY retrieval ./retrieval
COPY service ./service
COPY migrations ./migrations
RUN pip install --no-deps . \
 && useradd --create-home --uid 10001 claimsieve \
 && mkdir -p /data && chown claimsieve /data

USER 10001
VOLUME /data
EXPOSE 8000
ENV CLAIMSIEVE_HOST=0.0.0.0 CLAIMSIEVE_MIGRATE_ON_START=false

CMD ["sh", "-c", "alembic upgrade head && exec uvicorn --factory service.app:create_app --host \"$CLAIMSIEVE_HOST\" --port \"${CLAIMSIEVE_PORT:-8000}\""]
