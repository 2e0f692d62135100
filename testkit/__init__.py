"""What the tests and the benchmarks share (neither imports the other): the dev lectures' ground
truth (`truth.py`) and sentences (`lecture_text.py`), word error rate (`wer.py`), the fake microphone and Chromium's flags
(`browser.py`), and driving the page and checking the audio it sent (`page.py`)."""
