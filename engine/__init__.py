"""The compact-model engine: load banks, predict, read activations (pure PyTorch, no Qt)."""
