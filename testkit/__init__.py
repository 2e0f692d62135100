"""What the tests and the benchmarks share (neither imports the other): the dev lectures' ground
truth (`truth.py`) and sentences (`lecture_text.py`), word error rate (`wer.py`), the fake
microphone and Chromium's flags (`browser.py`), driving the page and checking the audio it sent
(`page.py`), and the detector scored on the labelled alerts corpus (`alerts_corpus.py`)."""
