"""Part C: signal x headroom along a pretraining trajectory.

- `metrics`: per checkpoint, exact pass@1 / pass@k, headroom H, signal S = |grad_theta J|^2 and the prompt-state
  value-gradient norm, all from teacher-forced passes (no sampling) in float64.
- `rl`: critic-free RL (GRPO, RLOO, PPO-clip with group baselines) from a checkpoint, and the learning-rate rule.
- `predictors`: the saturating signal x headroom predictor G_pred = H (1 - exp(-kappa S / H)), its
  leave-one-checkpoint-out fit, rank correlations with seed-bootstrap intervals.
- `checks`: the C1 / C2 claim checks; `nulls`: their nulls and planted positives (R19).
"""
