"""Attack: colluding listeners pool the content hashes of the clips they are served.

With byte-identical deliveries a hash is a clip id: "the clip seen most" is the system every
comparison shares, a pair seen before is a repeat catch, a clip seen only in catch trials is
the manipulated one. Here eight scripted listeners fetch every clip they are given, pool the
hashes and sizes, and play those strategies; each delivery must differ in bytes while its
loudness stays within 0.1 LU of the study's target.
"""

from __future__ import annotations

import hashlib
from collections import Counter

import numpy as np
import pytest
from scipy.stats import binomtest

from listening.delivery import wav_samples
from listening.models import Trial
from listening.stimuli import integrated_loudness
from tests.listening.listener_client import Listener

pytestmark = pytest.mark.django_db

N_LISTENERS = 24
# The strategies' answers must look like coin flips. Two-sided binomial tests at this level: a
# run with no leak fails one of the two about once in 1,200 (24 catch trials: 3 or fewer passed,
# or 21 or more); a leak that passes 90% of the catches fails it 4 times in 5.
ALPHA = 0.001


def fetch(listener: Listener, url: str) -> bytes:
    response = listener.client.get(url)
    assert response.status_code == 200, response
    return response.content


@pytest.fixture
def study(make_study):
    return make_study(comparisons=[("three-stage", "ground-truth"), ("three-stage", "random")], attributes=[],
                      quota_per_pair=20, preference_trials=4, catch_rate=0.25, screening=False)


def test_colluders_pooling_hashes_learn_nothing_about_system_or_catch_status(study):
    pool_hashes: Counter[str] = Counter()
    pool_sizes: Counter[int] = Counter()
    picks_three_stage, catch_passed, loudness = [], [], []
    # Ties (no clip seen before, the usual case) are broken by a coin, not always "left": a
    # constant side fails every repeat catch (sides are swapped), which is the catch working,
    # not the pooled hashes telling anything.
    coin = np.random.default_rng(7)
    for index in range(N_LISTENERS):
        listener = Listener(study, PROLIFIC_PID=f"{index:024x}")
        listener.consent()
        assert listener.practice().status_code == 200
        while not (reply := listener.next())["done"]:
            trial = reply["trial"]
            audio = {side: fetch(listener, url) for side, url in trial["audio"].items()}
            digests = {side: hashlib.sha256(data).hexdigest() for side, data in audio.items()}
            # Strategy: the clip the pool has seen most (most shared system / the familiar clip).
            seen = {side: pool_hashes[d] + pool_sizes[len(audio[side])] for side, d in digests.items()}
            if seen["left"] == seen["right"]:
                chosen = str(coin.choice(["left", "right"]))
            else:
                chosen = "left" if seen["left"] > seen["right"] else "right"
            pool_hashes.update(digests.values())
            pool_sizes.update(len(data) for data in audio.values())
            for data in audio.values():
                samples, rate = wav_samples(data)
                loudness.append(integrated_loudness(samples, rate))
            listener.play(trial)
            assert listener.answer(trial, chosen=chosen).status_code == 200
            row = Trial.objects.select_related("stimulus_left", "stimulus_right").get(public_id=trial["id"])
            if row.is_catch:
                catch_passed.append(row.catch_passed)
            else:
                systems = {"left": row.stimulus_left.system, "right": row.stimulus_right.system}
                picks_three_stage.append(systems[chosen] == "three-stage")

    # No delivery's bytes ever recur, and sizes recur no more than chance padding allows.
    assert max(pool_hashes.values()) == 1
    assert max(pool_sizes.values()) <= 3
    # Every delivery is at the study's loudness.
    assert np.max(np.abs(np.array(loudness) - study.target_lufs)) <= 0.1
    # The strategies are at chance: the pooled "seen most" clip is three-stage as often as a coin
    # says, and catch trials are passed (or failed: that would tell as much) as often as a coin
    # says, without listening.
    assert len(picks_three_stage) >= 2 * N_LISTENERS and len(catch_passed) >= N_LISTENERS
    assert binomtest(sum(picks_three_stage), len(picks_three_stage), 0.5).pvalue > ALPHA, picks_three_stage
    assert binomtest(sum(catch_passed), len(catch_passed), 0.5).pvalue > ALPHA, catch_passed


def test_one_delivery_is_stable_across_byte_ranges_and_two_deliveries_differ(study):
    listener = Listener(study, PROLIFIC_PID="a" * 24)
    listener.consent()
    listener.practice()
    trial = listener.next()["trial"]
    url = trial["audio"]["left"]
    whole = fetch(listener, url)
    part = listener.client.get(url, HTTP_RANGE="bytes=100-199")
    assert part.status_code == 206 and part.content == whole[100:200]
    assert fetch(listener, url) == whole  # the same token: the same delivery
    # The same clip for another page view (a new token) is another delivery.
    again = listener.client.get(listener.base + "api/next").json()["trial"]
    assert again["id"] == trial["id"] and again["audio"]["left"] != url
    other = fetch(listener, again["audio"]["left"])
    assert hashlib.sha256(other).digest() != hashlib.sha256(whole).digest()
    a, rate = wav_samples(whole)
    b, _ = wav_samples(other)
    assert abs(integrated_loudness(a, rate) - integrated_loudness(b, rate)) <= 0.1
