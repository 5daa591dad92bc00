"""OV2VSS and the parts it shares with the image-only clip-cost-volume baseline."""
