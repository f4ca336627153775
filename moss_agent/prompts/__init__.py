"""MOSS prompt text files (meta instruction, plugin declarations), read with importlib.resources."""
