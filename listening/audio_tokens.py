"""Per-participant audio tokens: signed, expiring, and naming only a trial and a side.

A token is `django.core.signing` data (readable, not secret) holding the participant's id,
the session nonce that binds it to one browser session, the trial's or screening trial's
public id, the side and a random delivery id (so every page view is a new delivery with its
own bytes, `listening.delivery`). It never names a stimulus, file or system. The audio view serves it
only to the browser session that currently owns that participant.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from django.core import signing

SALT = "listening.audio"
KINDS = ("trial", "screening")
TOKEN_SIDES = ("left", "right", "single")


class BadAudioToken(Exception):
    """The token is forged, expired or malformed."""


@dataclass(frozen=True)
class AudioClaim:
    participant: str
    nonce: str
    kind: str
    target: str
    side: str
    delivery: str = field(default_factory=lambda: secrets.token_urlsafe(9))


def make_token(claim: AudioClaim) -> str:
    payload = [claim.participant, claim.nonce, claim.kind, claim.target, claim.side, claim.delivery]
    return signing.dumps(payload, salt=SALT, compress=True)


def read_token(token: str, max_age_s: int) -> AudioClaim:
    try:
        payload = signing.loads(token, salt=SALT, max_age=max_age_s)
    except signing.SignatureExpired:
        raise BadAudioToken("expired") from None
    except signing.BadSignature:
        raise BadAudioToken("bad signature") from None
    if (not isinstance(payload, list) or len(payload) != 6 or not all(isinstance(p, str) for p in payload)
            or payload[2] not in KINDS or payload[4] not in TOKEN_SIDES):
        raise BadAudioToken("malformed")
    return AudioClaim(*payload)
