"""Per-batch capture on the device: extracting logits, targets and ids, and the epoch buffer (torch only)."""
