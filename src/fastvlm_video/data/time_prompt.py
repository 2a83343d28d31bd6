"""Time-aware prompts (``--time_instruction``): tell the model when its frames were taken, as LLaVA-Video does.

The one place the text is written. Training (``data/dataset.py``), predict and evaluate
(``infer/predictor.py``) and the token budget (``budget/tokens.py``) all call ``add_time_instructions``,
so the words are identical everywhere. The text goes in the user turn, right after the video's
``<image>`` placeholder and before the question, so it is never trained (labels cover assistant turns only):

    <image>
    The video lasts for 5.00 seconds, and 4 frames are uniformly sampled from it. These frames are located at 0.00s, 1.60s, 3.30s, 4.90s.
    What happens?

Times are seconds from the start of the clip (of the record's ``start``/``end`` segment, when it has one).
"""

from __future__ import annotations

from collections.abc import Sequence

from ..constants import IMAGE_TOKEN
from .records import Message

# (frame timestamps in seconds, (clip start, clip end) in seconds) of one video; None for an image.
FrameTimes = tuple[Sequence[float], tuple[float, float]]


def time_instruction(timestamps: Sequence[float], window: tuple[float, float], frame_sampling: str = "uniform") -> str:
    """The sentence for one video whose frames sit at ``timestamps`` within the clip ``window``."""
    start, end = window
    how = "sampled at a fixed rate" if frame_sampling == "fps" else "uniformly sampled"
    times = ", ".join(f"{t - start:.2f}s" for t in timestamps)
    return (
        f"The video lasts for {end - start:.2f} seconds, and {len(timestamps)} frames are {how} from it. "
        f"These frames are located at {times}."
    )


def add_time_instructions(messages: Sequence[Message], times: Sequence[FrameTimes | None], frame_sampling: str = "uniform") -> list[Message]:
    """``messages`` with each video's time instruction after its placeholder (``times[i]``: the i-th media item)."""
    media = iter(times)
    out = []
    for message in messages:
        pieces = message.content.split(IMAGE_TOKEN)
        for i in range(1, len(pieces)):
            info = next(media, None)
            if info is not None:
                rest = pieces[i][1:] if pieces[i].startswith("\n") else pieces[i]
                pieces[i] = f"\n{time_instruction(info[0], info[1], frame_sampling)}\n{rest}"
        out.append(Message(message.role, IMAGE_TOKEN.join(pieces)))
    return out
