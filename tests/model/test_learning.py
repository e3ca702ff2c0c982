"""The semantic stage really uses the vocal: a learning test, not a smoke test.

Synthetic excerpts whose accompaniment follows the vocal: each excerpt sings 8 of 40 semantic
ids (its "key"), and the accompaniment's id at every frame is a fixed function of the vocal id
at that frame (like a chord root that follows the sung pitch). The tiny semantic stage trained
for 300 steps must predict the accompaniment far better than the same model trained on the
same accompaniments paired with unrelated vocals (conditioning information removed); the
latter can only learn the accompaniment's own statistics.
"""

import torch

from hafm_core.model import stage_config
from hafm_core.train.data import TokenSet, split, stage_examples
from hafm_core.train.loop import TrainConfig, train_stage


def _synthetic_tokens(shuffle_vocals: bool) -> TokenSet:
    generator = torch.Generator().manual_seed(0)
    n_excerpts, n_frames = 512, 32
    alphabet = torch.randperm(500, generator=generator)[:40]
    keys = alphabet[torch.randint(0, 40, (n_excerpts, 8), generator=generator)]  # (N, 8)
    vocal = torch.gather(keys, 1, torch.randint(0, 8, (n_excerpts, n_frames), generator=generator))
    follow = torch.randperm(500, generator=generator)
    accompaniment = follow[vocal]  # (N, T): a function of the vocal, frame by frame
    if shuffle_vocals:
        vocal = vocal[torch.randperm(n_excerpts, generator=generator)]
    return TokenSet(vocal, accompaniment)


def _validation_accuracy(tokens: TokenSet, out) -> float:
    train, val = split(tokens, val_every=5)
    config = TrainConfig(steps=300, batch_size=16, lr=1e-2, warmup=20, eval_every=300, seed=0)
    result = train_stage(stage_config("semantic", "tiny"), config, stage_examples("semantic", train),
                         stage_examples("semantic", val), out)
    return result.last_val["accuracy_per_codebook"][0]


def test_conditioning_on_the_vocal_beats_no_conditioning(tmp_path):
    conditioned = _validation_accuracy(_synthetic_tokens(shuffle_vocals=False), tmp_path / "cond")
    unconditioned = _validation_accuracy(_synthetic_tokens(shuffle_vocals=True), tmp_path / "uncond")
    # The accompaniment alone allows ~1/8 (copying the excerpt's key); the vocal allows ~1.
    assert unconditioned < 0.3
    assert conditioned > 0.6
    assert conditioned - unconditioned > 0.35
