"""Training pipeline: synthetic plugin dialogues, tokenizer and SFT for MOSS-speaking models."""
