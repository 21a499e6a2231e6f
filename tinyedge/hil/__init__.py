"""Hardware-in-the-loop testing: boards as pytest fixtures (the `tinyedge` pytest plugin).

- `targets`: where a board is (emulated here, a pyserial URL, an inventory
  entry locked across processes, a labgrid place) and its lifetime.
- `firmware`: firmware built once per content (model, board, runtime,
  tinyedge's own sources), kept in a cache shared by runs and workers.
- `deployment`: a model deployed to a target: `.device` (the Device
  session), `.report` (the validation report), restart after a failure.
- `plugin`: the pytest hooks and fixtures (entry point `pytest11`).
"""

from __future__ import annotations

from .deployment import Deployment, deploy_to
from .firmware import FirmwareCache, PreparedFirmware
from .targets import BoardPool, InventoryEntry, Target, load_inventory

__all__ = ["BoardPool", "Deployment", "FirmwareCache", "InventoryEntry", "PreparedFirmware", "Target",
           "deploy_to", "load_inventory"]
