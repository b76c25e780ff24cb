"""Token policies on the addition task: data, tokenizer, tiny GPT-2 models, the digit-restricted policy.

- `task`: the splits, the tokenizer and prompt encoding (`encode_split`).
- `model`: building and loading (`load_checkpoint`) Hugging Face causal LMs.
- `checkpoints`: each checkpoint folder's manifest (file sizes and sha256), checked by the loader.
- `external`: user-supplied checkpoints: their checks, content hash and import.
- `policy`: the digit-restricted policy (log-probabilities, sampling, rewards, `exact_pass1`).
- `updates`: critic-free advantages (REINFORCE, RLOO, GRPO) and their one dispatch `advantages`.
- `pretrain`: pretraining of a group of members with resume state (one writer per resume folder); its
  checkpoints are the trajectory of Parts B and C.
- `stack`: K parameter sets of one architecture as one buffer (`Stack`) and the one optimizer on it
  (`StackedOptimizer`: Adam or SGD), shared by pretraining groups and Part C's RL runs.
- `pretrain_stack`: the group's pretraining step, all members as one stacked computation.
- `stacked`: the forward of K GPT-2s of one architecture as one model with a run axis (a `Stack`'s parameters).
- Part B (costates, alignment and the B1-B3 checks) lives in `vgh.costates`.
"""
