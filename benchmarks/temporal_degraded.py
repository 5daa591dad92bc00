"""Does a little temporal context help an image method where a frame alone is ambiguous?

    python benchmarks/temporal_degraded.py [--bases sclip,clearclip,naclip] [--window 3] [--placement centred]

On the synthetic world's validation videos (20% of frames degraded: faded, noisy, blurred or
occluded), each training-free base method with the toy CLIP runs alone and wrapped by `temporal`;
unseen mIoU and pAcc are printed on the degraded and on the clean frames separately, with chance's.
The wrapped method computes each base frame once (`base_frames`, printed).
"""

from __future__ import annotations

import argparse
import time

from benchmark import registry
from methods.toy.degraded import split_scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bases", default="sclip,clearclip,naclip")
    parser.add_argument("--window", type=int, default=3)
    parser.add_argument("--placement", default="centred")
    args = parser.parse_args()
    print(f"synthetic:unseen, val videos, toy CLIP; temporal window {args.window}, {args.placement}")
    print(f"{'method':34s} {'degraded mIoU':>13s} {'pAcc':>6s} {'clean mIoU':>11s} {'pAcc':>6s} {'base frames':>11s} {'s':>6s}")
    rows = [("chance", registry.create("chance"))]
    for base in args.bases.split(","):
        rows.append((base, registry.create(base)))
        rows.append((f"{base} + temporal", registry.create("temporal", base=base, window=args.window,
                                                            placement=args.placement)))
    for name, method in rows:
        started = time.perf_counter()
        scores = split_scores({name: method})[name]
        seconds = time.perf_counter() - started
        counts = method.take_counts().get("base_frames", "-")
        degraded, clean = scores["degraded"], scores["clean"]
        print(f"{name:34s} {degraded['mIoU']:13.2f} {degraded['pAcc']:6.2f} {clean['mIoU']:11.2f} {clean['pAcc']:6.2f} "
              f"{counts!s:>11s} {seconds:6.1f}")


if __name__ == "__main__":
    main()
