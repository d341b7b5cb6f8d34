"""Accuracy evaluation on labeled photo folders, and threshold calibration."""
