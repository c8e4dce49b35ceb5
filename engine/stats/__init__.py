"""Statistics of recorded responses: the per-image response sums (the one accumulator), Pearson r, r2_ER,
the vectorized model-versus-neuron fits, and summaries of predictions for display."""
