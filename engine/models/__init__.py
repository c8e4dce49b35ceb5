"""The compact models themselves: the architecture, loading and folding a bank, predicting, fetching the
published bank, and what a model is made of (the Inspect view's numbers)."""
