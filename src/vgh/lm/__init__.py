"""Token policies on the addition task: data, tokenizer, tiny GPT-2 models, the digit-restricted policy.

- `task`: the splits, the tokenizer and prompt encoding (`encode_split`).
- `model`: building, loading (`load_checkpoint`) and importing Hugging Face causal LMs.
- `policy`: the digit-restricted policy (log-probabilities, sampling, rewards, `exact_pass1`).
- `updates`: critic-free advantages (REINFORCE, RLOO, GRPO) and their one dispatch `advantages`.
- `pretrain`: pretraining with resume state; its checkpoints are the trajectory of Parts B and C.
- `stacked`: K GPT-2s of one architecture as one model with a run axis (Part C's RL runs of a checkpoint).
- `checks`: the B1-B3 claim checks. Part B's computations live in `vgh.costates`.
"""
