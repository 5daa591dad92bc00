"""Frames decoded ahead in background threads are the frames decoded on demand."""

import pytest
import torch

from benchmark.data import synthetic
from benchmark.data.loading import prefetched_videos
from benchmark.interface import Video


def test_decoding_ahead_gives_the_same_frames_in_any_access_order():
    records = synthetic.SyntheticReader().read_videos(synthetic.ensure(), "val")[:2]
    for ahead in ("annotated", "all"):
        for record, video in zip(records, prefetched_videos(records, prefetch=4, ahead=ahead)):
            plain = Video(record.name, record.frames, record.annotated)
            order = [0, 5, 1, 19, 18, 6, 7, 2]  # jumps and revisits, as video methods read
            for i in order:
                frame = video.frame(i)
                assert frame.dtype == torch.uint8 and frame.shape[0] == 3
                assert torch.equal(frame, plain.frame(i)), (ahead, record.name, i)
            assert len(video._pending) <= 16  # skipped frames are let go, not kept forever


def test_an_unreadable_frame_decoded_ahead_names_the_video_and_the_file(tmp_path):
    bad = tmp_path / "00000002.jpg"
    bad.write_bytes(b"not a jpeg")
    good = synthetic.SyntheticReader().read_videos(synthetic.ensure(), "val")[0].frames[0]
    video = Video("clip", [good, bad], [0, 1], prefetch=2)
    video.frame(0)  # schedules frame 1 in the background
    with pytest.raises(OSError, match=f"video clip, frame 1: cannot read image {bad}"):
        video.frame(1)
