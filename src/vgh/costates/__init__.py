"""Part B: transformer costates (exact value gradients, straight-through and score-function costates, update
alignment) and the B1-B3 checks."""
