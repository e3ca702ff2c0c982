"""Protocol constants of HAFM, in one place (see shared/design/MODEL.md)."""

# Semantic tokens: HuBERT-base at 16 kHz, 20 ms frames.
SEMANTIC_SAMPLE_RATE_HZ = 16_000
SEMANTIC_FRAME_RATE_HZ = 50
SEMANTIC_HOP_SAMPLES = SEMANTIC_SAMPLE_RATE_HZ // SEMANTIC_FRAME_RATE_HZ  # 320
HUBERT_LAYER = 9
KMEANS_CLUSTERS = 500
VOCAL_NOISE_SIGMA = 0.01

# Acoustic tokens: EnCodec 24 kHz at 6 kbps.
ACOUSTIC_SAMPLE_RATE_HZ = 24_000
ACOUSTIC_FRAME_RATE_HZ = 75
ACOUSTIC_HOP_SAMPLES = ACOUSTIC_SAMPLE_RATE_HZ // ACOUSTIC_FRAME_RATE_HZ  # 320
ENCODEC_BANDWIDTH_KBPS = 6.0
N_CODEBOOKS = 8
N_COARSE_CODEBOOKS = 4
CODEBOOK_SIZE = 1024

# Codebook patterns of a stage's target (see hafm_core.patterns). `hafm train` uses the default
# (chosen from benchmarks/codebook_pattern.py, see the README); a checkpoint without the field is flat.
CODEBOOK_PATTERNS = ("flat", "delay")
DEFAULT_CODEBOOK_PATTERN = "delay"

# Precision of the cascade's weights and activations at generation (`hafm generate --dtype`, a
# benchmark run's `dtype`); see the README's speed table for each one's agreement with float32.
MODEL_DTYPES = ("float32", "bfloat16", "float16")
DEFAULT_MODEL_DTYPE = "float32"

# Excerpts.
EXCERPT_DURATION_S = 10.0
UNIT_S = 0.04  # 40 ms: the shortest span holding whole frames at both rates (2 semantic, 3 acoustic)

# Sampling defaults.
DEFAULT_TEMPERATURE = 0.9
DEFAULT_TOP_K = 250
DEFAULT_GUIDANCE_SCALE = 3.0

# Systems compared in a benchmark.
SYSTEMS = ("three-stage", "two-stage", "random", "ground-truth", "ground-truth-raw")

# Figures published for HAFM on MUSDB18.
PAPER_FAD_THREE_STAGE = 1.71
PAPER_FAD_TWO_STAGE = 2.10
PAPER_RELATIVE_IMPROVEMENT = 0.186
PAPER_PREFERENCE_VS_GROUND_TRUTH = 0.515
