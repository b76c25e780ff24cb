"""Token policies on the addition task: data, tokenizer, tiny GPT-2 models, the digit-restricted policy."""
