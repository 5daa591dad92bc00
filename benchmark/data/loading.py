"""Videos as the runner hands them to a method: frames decoding ahead, the next video warming up."""

from __future__ import annotations

from collections.abc import Iterator

from benchmark.data.records import VideoRecord
from benchmark.interface import Video

#: Frames (and masks) decoded ahead of the method, in background threads.
PREFETCH_FRAMES = 4


def prefetched_videos(records: list[VideoRecord], prefetch: int = PREFETCH_FRAMES,
                      ahead: str = "annotated") -> Iterator[Video]:
    """The videos in order; while one is segmented, the first frames of the next decode."""
    def make(record: VideoRecord) -> Video:
        video = Video(record.name, record.frames, record.annotated, prefetch=prefetch, ahead=ahead)
        video.start_prefetch()
        return video

    upcoming = make(records[0]) if records else None
    for position in range(len(records)):
        current = upcoming
        upcoming = make(records[position + 1]) if position + 1 < len(records) else None
        yield current
