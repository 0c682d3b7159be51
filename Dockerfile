# One image for every newsmon process; the command picks the role (see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

COPY pyproject.toml README.md ./
COPY core ./core
COPY workers ./workers
COPY scheduler ./scheduler
COPY api ./api
COPY cli ./cli
COPY migrations ./migrations
RUN pip install . && useradd --system --home /app newsmon && mkdir -p /app/data \
    && chown newsmon /app/data
USER newsmon

# In a container the web process must listen on every interface to be reachable.
ENV NEWSMON_WEB_HOST=0.0.0.0 NEWSMON_WEB_PORT=8000
EXPOSE 8000
CMD ["newsmon", "web"]
