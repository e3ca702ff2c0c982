// A compact clip player for listener pages: one play/pause button, a position bar and, for a
// pair, an A/B switch. Both clips of a pair run on one clock: they play together and the
// switch only swaps which one is audible, so switching keeps the playback position (as in
// MUSHRA tools). The player also measures what was really heard: position advanced by
// playback in real time counts, a jump (seek) does not, so seeking to the end unlocks nothing.
(function () {
  "use strict";

  const BIN_S = 0.1;           // coverage resolution
  const DRIFT_S = 0.06;        // realign the inaudible clip when it drifts further than this
  const SEEK_STEP_S = 2;       // arrow keys jump this far
  const FETCH_TRIES = 3;

  // DOM writes only on change: live regions and assistive technology hear real changes only.
  function setText(element, text) { if (element.textContent !== text) element.textContent = text; }
  function setAttr(element, name, value) { if (element.getAttribute(name) !== value) element.setAttribute(name, value); }

  function formatTime(seconds) {
    const s = Math.max(0, Math.floor(seconds + 1e-6));
    return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
  }

  // Fetch the whole file before playing: instant seeks and switches, and the server sees every
  // byte delivered (it refuses answers until it has).
  function fetchClip(url, tries) {
    return fetch(url, { credentials: "same-origin" }).then(function (response) {
      if (!response.ok) throw new Error("audio answered " + response.status);
      return response.blob();
    }).catch(function (error) {
      if (tries <= 1) throw error;
      return new Promise(function (resolve) { window.setTimeout(resolve, 500); })
        .then(function () { return fetchClip(url, tries - 1); });
    });
  }

  function whenMetadata(audio) {
    return new Promise(function (resolve, reject) {
      if (audio.readyState >= 1) { resolve(); return; }
      audio.addEventListener("loadedmetadata", function () { resolve(); }, { once: true });
      audio.addEventListener("error", function () { reject(new Error("audio could not be decoded")); }, { once: true });
    });
  }

  // root: a .player element holding button.play, .position (role=progressbar) and, for pairs,
  // a [role=radiogroup] of two [role=radio] buttons with data-side. sources: {left, right?}.
  // callbacks: onChange() after any progress; onHeard(side) once per side on first heard audio;
  // onStatus(text) for loading messages.
  function create(root, sources, callbacks) {
    const sides = Object.keys(sources);
    const playButton = root.querySelector("button.play");
    const playLabel = playButton.querySelector(".label");
    const position = root.querySelector(".position");
    const fill = root.querySelector(".fill");
    const timeText = root.querySelector(".time");
    const radios = Array.from(root.querySelectorAll("[role=radio]"));
    const audio = {};
    const bins = {};
    const heardOnce = {};
    let audible = sides[0];
    let ready = false;
    let playing = false;
    let wantPlay = false;
    let duration = 0;
    let last = null;            // {pos, wall} of the previous tick during playback
    let frame = 0;
    let timer = 0;

    sides.forEach(function (side) {
      const element = document.createElement("audio");
      element.preload = "auto";
      element.dataset.side = side;
      element.muted = side !== audible;
      element.addEventListener("ended", function () { if (side === audible) finish(); });
      element.addEventListener("seeking", function () { if (side === audible) last = null; });
      // Paused or resumed from outside the page (headphones unplugged, media keys): follow it.
      element.addEventListener("pause", function () { if (side === audible && playing && !element.ended) stop(); });
      element.addEventListener("play", function () { if (side === audible && !playing) play(); });
      root.appendChild(element);
      audio[side] = element;
    });

    function clock() { return audio[audible].currentTime; }

    function cover(side, from, to) {
      const marks = bins[side];
      const first = Math.max(0, Math.floor(from / BIN_S));
      const end = Math.min(marks.length, Math.ceil(to / BIN_S - 1e-9));
      for (let i = first; i < end; i += 1) marks[i] = 1;
      if (!heardOnce[side] && end > first) {
        heardOnce[side] = true;
        if (callbacks.onHeard) callbacks.onHeard(side);
      }
    }

    // Count the stretch played since the last tick, if it was played (not jumped over).
    function tick() {
      if (!ready) return;
      const now = { pos: clock(), wall: performance.now() / 1000 };
      if (playing && last !== null) {
        const advanced = now.pos - last.pos;
        if (advanced > 0 && advanced <= 1.05 * (now.wall - last.wall) + 0.15) cover(audible, last.pos, now.pos);
      }
      last = playing ? now : null;
      if (playing) realign();
      render();
      if (callbacks.onChange) callbacks.onChange();
    }

    function realign() {
      const target = clock();
      sides.forEach(function (side) {
        const element = audio[side];
        if (side === audible || element.seeking || target >= element.duration) return;
        if (Math.abs(element.currentTime - target) > DRIFT_S) element.currentTime = target;
      });
    }

    function render() {
      const pos = Math.min(clock(), duration);
      fill.style.width = duration ? (100 * pos / duration).toFixed(2) + "%" : "0";
      setText(timeText, formatTime(pos) + " / " + formatTime(duration));
      setAttr(position, "aria-valuenow", pos.toFixed(1));
      setAttr(position, "aria-valuetext", formatTime(pos) + " of " + formatTime(duration));
      setText(playLabel, !ready && wantPlay ? "Loading" : playing ? "Pause" : "Play");
      playButton.classList.toggle("playing", playing);
      radios.forEach(function (radio) {
        const on = radio.dataset.side === audible;
        setAttr(radio, "aria-checked", on ? "true" : "false");
        radio.tabIndex = on ? 0 : -1;
      });
    }

    function loop() {
      tick();
      frame = playing ? window.requestAnimationFrame(loop) : 0;
    }

    function startClocks() {
      last = { pos: clock(), wall: performance.now() / 1000 };
      sides.forEach(function (side) {
        const element = audio[side];
        if (side !== audible && clock() >= element.duration) return;
        const started = element.play();
        if (started) started.catch(function () { if (side === audible) stop(); });
      });
      if (!frame) frame = window.requestAnimationFrame(loop);
      if (!timer) timer = window.setInterval(tick, 250);  // rAF sleeps in background tabs
    }

    function play() {
      if (!ready) { wantPlay = true; render(); return; }
      if (playing) return;
      if (audio[audible].ended || clock() >= duration - 0.02) seekTo(0);
      playing = true;
      startClocks();
      render();
    }

    function stop() {
      tick();
      playing = false;
      sides.forEach(function (side) { audio[side].pause(); });
      window.clearInterval(timer);
      timer = 0;
      last = null;
      render();
    }

    function pause() {
      wantPlay = false;
      if (playing) stop(); else render();
    }

    // The audible clip played to its end: stop() counts the last stretch (if it was played).
    function finish() {
      if (playing) stop();
      if (callbacks.onChange) callbacks.onChange();
    }

    function toggle() { if (playing || wantPlay) pause(); else play(); }

    function seekTo(seconds) {
      if (!ready) return;
      const target = Math.min(Math.max(0, seconds), duration);
      sides.forEach(function (side) { audio[side].currentTime = Math.min(target, audio[side].duration); });
      last = playing ? { pos: target, wall: performance.now() / 1000 } : null;  // a jump is not listening
      if (target >= duration - 0.01) {
        last = null;
        if (playing) stop();
      }
      render();
      if (callbacks.onChange) callbacks.onChange();
    }

    function seekBy(seconds) { seekTo(clock() + seconds); }

    // Make `side` the audible clip at the current position; starts playback if paused.
    function hear(side) {
      if (!audio[side]) return;
      if (side !== audible) {
        tick();
        const pos = clock();
        const element = audio[side];
        if (ready && Math.abs(element.currentTime - pos) > DRIFT_S / 2) element.currentTime = Math.min(pos, element.duration);
        audio[audible].muted = true;
        element.muted = false;
        audible = side;
        if (last !== null) last = { pos: pos, wall: last.wall };
        if (playing && pos >= element.duration - 0.02) stop();
        else if (playing && element.paused) { const p = element.play(); if (p) p.catch(function () {}); }
      }
      const focused = radios.indexOf(document.activeElement) >= 0;
      if (!playing) play(); else render();
      if (focused) radios.find(function (r) { return r.dataset.side === side; }).focus();
    }

    function heardSeconds(side) {
      return bins[side] ? bins[side].reduce(function (sum, bit) { return sum + bit; }, 0) * BIN_S : 0;
    }

    function heardWhole(side) {
      const marks = bins[side];
      if (!marks) return false;
      const covered = marks.reduce(function (sum, bit) { return sum + bit; }, 0);
      return covered >= Math.max(1, Math.ceil(0.95 * marks.length));
    }

    // ---- wiring ----------------------------------------------------------------------------
    playButton.addEventListener("click", toggle);
    radios.forEach(function (radio) {
      radio.addEventListener("click", function () { hear(radio.dataset.side); });
      radio.addEventListener("keydown", function (event) {
        const moves = { ArrowLeft: -1, ArrowUp: -1, ArrowRight: 1, ArrowDown: 1 };
        if (!(event.key in moves)) return;
        event.preventDefault();
        const index = (radios.indexOf(radio) + moves[event.key] + radios.length) % radios.length;
        hear(radios[index].dataset.side);
      });
    });
    let dragging = false;
    function seekToPointer(event) {
      const box = position.querySelector(".track").getBoundingClientRect();
      seekTo(duration * Math.min(1, Math.max(0, (event.clientX - box.left) / box.width)));
    }
    position.addEventListener("pointerdown", function (event) {
      if (!ready) return;
      dragging = true;
      position.setPointerCapture(event.pointerId);
      seekToPointer(event);
    });
    position.addEventListener("pointermove", function (event) { if (dragging) seekToPointer(event); });
    position.addEventListener("pointerup", function () { dragging = false; });
    position.addEventListener("pointercancel", function () { dragging = false; });

    const loaded = Promise.all(sides.map(function (side) {
      return fetchClip(sources[side], FETCH_TRIES).then(function (blob) {
        audio[side].src = URL.createObjectURL(blob);
        return whenMetadata(audio[side]);
      });
    })).then(function () {
      duration = Math.max.apply(null, sides.map(function (side) { return audio[side].duration; }));
      sides.forEach(function (side) { bins[side] = new Uint8Array(Math.max(1, Math.ceil(duration / BIN_S - 1e-9))); });
      setAttr(position, "aria-valuemax", duration.toFixed(1));
      ready = true;
      root.classList.add("ready");
      if (wantPlay) play(); else render();
      if (callbacks.onChange) callbacks.onChange();
    }).catch(function () {
      wantPlay = false;
      if (callbacks.onStatus) callbacks.onStatus("The sound could not be loaded. Please reload the page.");
      render();
    });

    root.hidden = false;
    render();

    // Fetch a clip again without playing it (the server asked to see all of its bytes).
    function refetch(side) { return sources[side] ? fetchClip(sources[side], FETCH_TRIES).then(function () {}) : null; }

    return {
      setText: setText, sides: sides, loaded: loaded, toggle: toggle, play: play, pause: pause, hear: hear, seekBy: seekBy,
      seekTo: seekTo, refetch: refetch, heardSeconds: heardSeconds, heardWhole: heardWhole,
      duration: function () { return duration; }, audible: function () { return audible; },
      playing: function () { return playing; },
      atEnd: function () { return ready && !playing && clock() >= duration - 0.05; },
      seekStep: function () { return Math.min(SEEK_STEP_S, Math.max(0.5, duration / 4)); },
    };
  }

  window.ListenPlayer = { create: create };
})();
