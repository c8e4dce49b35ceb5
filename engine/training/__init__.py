"""Training compact models for new neurons: distillation from a teacher, then pruning."""
