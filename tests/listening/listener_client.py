"""A listener driving the site through Django's test client, the way the page's JavaScript does."""

from __future__ import annotations

import itertools
import json
import re
import time

from django.test import Client

from listening.models import Participant, ScreeningTrial

_ADDRESSES = itertools.count(1)


def fresh_address() -> str:
    """A client address of its own for each scripted listener (joins are rate-limited per address)."""
    n = next(_ADDRESSES)
    return f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"


class Listener:
    def __init__(self, study, client: Client | None = None, **params):
        self.study = study
        self.client = client or Client(REMOTE_ADDR=fresh_address())
        self.params = params
        self.base = f"/listen/s/{study.public_id}/"

    def consent(self):
        self.client.get(self.base, self.params)
        return self.client.post(self.base, {"consent": "yes", **self.params})

    @property
    def participant(self) -> Participant:
        binding = self.client.session["listening"][str(self.study.public_id)]
        return Participant.objects.get(public_id=binding[0])

    def screening(self, correct: bool = True):
        """Answer the current screening trial (correctly or not); returns the response."""
        page = self.client.get(self.base + "screening/")
        assert page.status_code == 200, page
        screening_id = re.search(rb'name="screening" value="([0-9a-f-]+)"', page.content).group(1).decode()
        audio_url = re.search(rb'(/listen/audio/[^"\'<>\s]+)', page.content)
        if audio_url is not None:  # fetch the check's audio, as the page's player does
            assert self.client.get(audio_url.group(1).decode()).status_code == 200
        target = ScreeningTrial.objects.get(public_id=screening_id).target
        answer = target if correct else target % 3 + 1
        return self.client.post(self.base + "screening/", {"screening": screening_id, "answer": answer})

    def pass_screening(self, n_correct: int = 6):
        for index in range(6):
            response = self.screening(correct=index < n_correct)
        return response

    @staticmethod
    def trial_data(page) -> dict:
        match = re.search(rb'<script id="trial-data" type="application/json">(.*?)</script>', page.content, re.S)
        return json.loads(match.group(1))

    def post_json(self, url, body):
        return self.client.post(url, json.dumps(body), content_type="application/json")

    def fetch_audio(self, trial: dict, sides=None) -> dict[str, bytes]:
        """Download each clip whole, as the browser's player does (the server records it)."""
        audio = {}
        for side in sides or trial["audio"]:
            response = self.client.get(trial["audio"][side])
            assert response.status_code == 200, response
            audio[side] = response.content
        return audio

    def play(self, trial: dict, sides=None, ended=True):
        sides = sides or (["left", "right"] if trial["task"] == "pair" else ["left"])
        self.fetch_audio(trial, sides)
        for side in sides:
            assert self.post_json(trial["play_url"], {"side": side, "event": "play"}).status_code == 204
            if ended:
                assert self.post_json(trial["play_url"], {"side": side, "event": "ended"}).status_code == 204

    def answer(self, trial: dict, chosen="left", score=4, wait=True):
        """Post the answer; when the server says "too_early", wait `retry_after_ms` and post again."""
        if trial["task"] == "pair":
            body = {"chosen": chosen}
        else:
            body = {"ratings": {a: score for a in trial["attributes"]}}
        while True:
            response = self.post_json(trial["answer_url"], {**body, "answer_key": trial["answer_key"],
                                                            "response_time_ms": 1234})
            if not (wait and response.status_code == 409 and response.json()["code"] == "too_early"):
                return response
            time.sleep(response.json()["retry_after_ms"] / 1000)

    def practice(self):
        trial = self.trial_data(self.client.get(self.base + "instructions/"))
        assert trial["practice"]
        self.play(trial)
        return self.answer(trial)

    def next(self) -> dict:
        return self.client.get(self.base + "api/next").json()

    def finish(self, chosen="left") -> int:
        n = 0
        while not (reply := self.next())["done"]:
            self.play(reply["trial"])
            assert self.answer(reply["trial"], chosen=chosen).status_code == 200
            n += 1
        return n
