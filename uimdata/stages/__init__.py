"""Batch stages and global steps of the scan pipeline."""
