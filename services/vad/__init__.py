"""VAD worker: cuts each session's audio into utterances at pauses with Silero VAD."""
