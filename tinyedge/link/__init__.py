"""The serial link: protocol (framing, messages), transport (pyserial URLs), device sessions."""

from .device import Device, LinkStats
from .protocol import DeviceInfo, TensorSpec

__all__ = ["Device", "DeviceInfo", "LinkStats", "TensorSpec"]
