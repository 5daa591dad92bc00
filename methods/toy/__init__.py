"""The miniature open-vocabulary world: a toy CLIP and a toy SAM pretrained on the synthetic world,
and the trained segmenters built on them, so the whole pipeline gives meaningful numbers on a CPU.
The checkpoints ship in `weights/toy/`; `python -m methods.toy.regenerate` rebuilds them from scratch.
"""
