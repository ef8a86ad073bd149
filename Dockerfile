# The production image: web, worker and beat all run from it (see docker-compose.yml).
FROM python:3.12-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY console ./console
COPY agents ./agents
COPY approvals ./approvals
COPY memory ./memory
RUN pip install --no-cache-dir .
COPY manage.py ./
COPY templates ./templates
COPY static ./static
RUN SECRET_KEY=build-only-not-secret python manage.py collectstatic --noinput
RUN useradd --create-home proctor
USER proctor
EXPOSE 8000
CMD ["uvicorn", "console.asgi:application", "--host", "0.0.0.0", "--port", "8000", "--proxy-headers"]
