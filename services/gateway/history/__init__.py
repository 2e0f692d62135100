"""Past sessions (the history routes) and their transcripts as files.

- `records.py`: a session read back from Redis (registry entry, events, the first final of each
  segment);
- `tallies.py`: the counts of the list, brought up to date incrementally;
- `formats.py`: the transcript as txt, srt, vtt and Markdown;
- `routes.py`: `GET /api/sessions`, `/api/sessions/{sid}`, `/api/sessions/{sid}/transcript.{ext}`.

This file imports none of them: the archive (`archived.py`) reads `records` while `routes` reads
the archive.
"""
