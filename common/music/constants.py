"""Constants shared by every music module, and the one error type for bad music files."""

from __future__ import annotations

PITCH_LOW = 36  # C2: lowest MIDI pitch of the Bach chorales and of Coconet's pitch window
PITCH_HIGH = 81  # A5: highest (inclusive)
N_PITCHES = PITCH_HIGH - PITCH_LOW + 1  # 46 pitch columns in a pianoroll
REST = -1  # a silent (voice, frame) cell in a voice array; an all-zero row in a pianoroll
FRAMES_PER_QUARTER = 4  # sixteenth-note frames
N_VOICES = 4  # soprano, alto, tenor, bass, in that order
VOICE_NAMES = ("Soprano", "Alto", "Tenor", "Bass")


class MusicFileError(ValueError):
    """A music file or score that cannot be used, as one line naming the file and the problem."""

    def __init__(self, source: object, problem: str):
        self.source = str(source)
        self.problem = problem
        super().__init__(f"{source}: {problem}")
