"""The sentences of the synthetic dev lectures (make_dev_lecture.py, README "Tests"): five
announcements with the category each must raise, and ten plain lecture sentences that raise none.
The detector's tests check them; bench/voice_data.py has the lecturer of its recordings say them.
"""

from __future__ import annotations

ANNOUNCEMENTS = [
    ("Remember that the second lab report is due on Thursday before class.", "deadline"),
    ("Your final exam will be held on December ninth in this room.", "exam"),
    ("Next week there is a pop quiz on chapter four, so please review it.", "quiz"),
    ("Problem set five has to be turned in by Sunday at noon.", "assignment"),
    ("Wednesday's lecture is cancelled and moved to Friday afternoon.", "schedule"),
]
PLAIN = [
    "Photosynthesis converts light energy into chemical energy stored in sugar.",
    "The mitochondria are where cellular respiration takes place.",
    "Enzymes lower the activation energy of a chemical reaction.",
    "A hypothesis must be testable and it must be possible to show that it is false.",
    "The cell membrane controls what enters and leaves the cell.",
    "Water moves across the membrane from low to high solute concentration.",
    "Let us draw the diagram on the board and label every part of it.",
    "Natural selection acts on variation that already exists in a population.",
    "Proteins fold into shapes that determine what they can do.",
    "We will come back to this example when we discuss genetics.",
]
