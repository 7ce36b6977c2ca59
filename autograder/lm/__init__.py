"""The language-model track's runtime: Tiny Shakespeare and its character tokenizer (data), training and
sampling the reference TinyGPT (train, generate), and the built-in model it exports (export, builtin/)."""

from pathlib import Path

# The built-in model (a transformers GPT-2 folder) shipped in the package: `autograder train --builtin` writes it.
BUILTIN_DIR = Path(__file__).with_name("builtin")
