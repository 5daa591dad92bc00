"""OV2VSS as the authors' released code computes it (github AVC2-UESTC/OV2VSS, commit 25fca42)."""
