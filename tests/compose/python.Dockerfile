# The PYTHON_IMAGE of the compose engine test: the CI base image (Debian bookworm from Debian's
# packages, .ci/base-image.sh: Python 3.11 with venv), trusting the host's CA bundle for pip, as the
# CI container does (networks that intercept TLS).
ARG BASE
FROM ${BASE}
COPY host-ca.crt /etc/ssl/certs/host-ca.crt
ENV PIP_CERT=/etc/ssl/certs/host-ca.crt PIP_DEFAULT_TIMEOUT=180
