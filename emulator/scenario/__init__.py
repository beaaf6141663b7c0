"""Scenarios: the file format, its catalogue of names and the firmware profiles."""
