"""OV-VSS benchmark harness: evaluate open-vocabulary video semantic segmentation methods."""

from benchmark.interface import ABSTAIN, ImageMethod, Method, TableLabel, TrainableMethod, Video
from benchmark.speeds import Speed

__all__ = ["ABSTAIN", "ImageMethod", "Method", "Speed", "TableLabel", "TrainableMethod", "Video"]
__version__ = "0.1.0"
