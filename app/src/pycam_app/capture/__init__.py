"""Capture backends: one interface (Source) with picamera2, V4L2 (PyAV) and synthetic implementations."""

from .base import Captured, CaptureError, Source
from .select import open_source

__all__ = ["CaptureError", "Captured", "Source", "open_source"]
