"""Announcement alerts: the detector (exams, quizzes, deadlines, schedule changes) and its date resolution."""
