"""Shared fixtures. W&B never contacts a server in tests."""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("WANDB_DISABLE_GIT", "true")
sys.path.insert(0, str(Path(__file__).parent))

PAPER_DATA = Path(__file__).resolve().parents[2] / "shared" / "paper-data"
