"""Tokenizers: 50 Hz HuBERT semantic ids, 75 Hz EnCodec acoustic codes, and their cache.

- `semantic.SemanticTokenizer`: HuBERT layer-9 features of 16 kHz audio -> k-means ids, 50 Hz.
- `acoustic.AcousticTokenizer`: EnCodec 24 kHz at 6 kbps -> 8 codebooks of 1024 at 75 Hz.
- `alignment`: the 40 ms unit that makes T_acoustic exactly 3/2 of T_semantic.
- `cache`: one token file per excerpt, keyed by content and tokenizer hashes.
- `tiny`: tiny random-init weights folders for tests and the demo.
"""
