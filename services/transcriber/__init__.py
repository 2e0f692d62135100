"""Transcriber worker: turns utterances into text with faster-whisper or an OpenAI-compatible API."""
