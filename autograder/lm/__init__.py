"""The language-model track's runtime: Tiny Shakespeare and its character tokenizer (data), training and
sampling the reference TinyGPT (train, generate), and the built-in model it exports (export, builtin/)."""
