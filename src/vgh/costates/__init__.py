"""Part B: transformer costates (exact value gradients, straight-through and score-function costates, update
alignment), the B1-B3 checks and their nulls and planted positives (R19, `nulls`)."""
