"""Part A: toy continuous control with exact references.

- `lq`: random stable linear-quadratic systems, the exact value recursion (P_t, c_t), J(K) and grad_K J.
- `pendulum`: a torque-driven pendulum with a tanh-MLP policy and a smoothing reference value gradient.
- `estimators`: score-function and pathwise gradients, costates and their conditional means.
- `experiments`: the A1-A3 experiments as tidy tables; `summary`: what the checks decide on and the figures plot;
  `checks`: the claim checks; `nulls`: their nulls (R19).
"""
