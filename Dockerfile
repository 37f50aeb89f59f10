# otpservice container image.
#
# Stage 1 builds the otpservice wheel and installs it, with its dependencies, into a virtualenv.
# Stage 2 is a clean python:3.11-slim with only that virtualenv copied in: no compiler, no pip,
# no tests, no source tree. Configuration comes only from the environment and from the TOML file
# named by OTP_CONFIG_FILE (mount it, e.g. at /etc/otpservice/config.toml); nothing is baked in.
#
#   docker build -t otpservice:0.1.0 .

FROM python:3.11-slim-bookworm AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY otpservice/ ./otpservice/

# The venv is created without pip and filled by the build stage's pip (`pip --python`), so the
# runtime image carries no installer. --only-binary: every dependency ships manylinux wheels, and
# the slim image has no compiler to build one anyway; failing here is clearer than failing later.
RUN python -m pip wheel --no-deps --wheel-dir /wheels . \
 && python -m venv --without-pip /opt/venv \
 && python -m pip --python /opt/venv/bin/python install --only-binary=:all: /wheels/otpservice-*.whl


FROM python:3.11-slim-bookworm

LABEL org.opencontainers.image.title="otpservice" \
      org.opencontainers.image.description="OTP / 2FA verification service" \
      org.opencontainers.image.licenses="Apache-2.0"

# A fixed, unprivileged UID/GID: Kubernetes' runAsNonRoot can only verify a numeric USER, and
# volume ownership (fsGroup) is predictable.
RUN groupadd --system --gid 10001 otp \
 && useradd --system --no-log-init --uid 10001 --gid otp \
      --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin otp

COPY --from=build /opt/venv /opt/venv

ENV PATH="/opt/venv/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    OTP_HOST=0.0.0.0 \
    OTP_PORT=8000

USER 10001:10001
EXPOSE 8000

# No curl in slim: the stdlib does the probe. urlopen raises on a refused connection, a timeout
# or any non-2xx answer, which makes the exit status non-zero.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('OTP_PORT', '8000'), timeout=3)"]

CMD ["otpservice", "serve"]
