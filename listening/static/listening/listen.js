// Listener pages: consent, headphone screening, trials (pair / rating), the return redirect.
// Keys work wherever focus is (players included), but Enter and Space on a button, link or
// checkbox always do what that control does. Answers unlock once the player has measured
// enough listening; the server checks listening again and may ask the page to wait.
(function () {
  "use strict";

  function csrfToken() {
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    if (match) return decodeURIComponent(match[1]);
    const field = document.querySelector("input[name=csrfmiddlewaretoken]");
    return field ? field.value : "";
  }

  function postJSON(url, body) {
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
      body: JSON.stringify(body),
    });
  }

  // Where a key belongs to the focused control and must not be taken as a shortcut.
  function ownsKey(target, key) {
    if (!target || !target.tagName) return false;
    const tag = target.tagName;
    if (tag === "TEXTAREA" || tag === "SELECT" || target.isContentEditable) return true;
    if (tag === "INPUT" && !/^(radio|checkbox)$/.test(target.type)) return true;
    const control = tag === "BUTTON" || (tag === "A" && target.hasAttribute("href")) ||
      (tag === "INPUT" && target.type === "checkbox");
    if (control && (key === "Enter" || key === " ")) return true;
    if (key === " " && tag === "INPUT") return true;  // Space checks a radio button
    const inRadioGroup = (tag === "INPUT" && target.type === "radio") || target.getAttribute("role") === "radio";
    return inRadioGroup && /^Arrow/.test(key);
  }

  function shortcutsOff(event) {
    return event.ctrlKey || event.metaKey || event.altKey || ownsKey(event.target, event.key);
  }

  function focusMessage(element) {
    element.hidden = false;
    element.focus();
  }

  // Space activates links drawn as buttons too, as it does real buttons.
  document.addEventListener("keydown", function (event) {
    const target = event.target;
    if (event.key === " " && target.tagName === "A" && target.classList.contains("button")) {
      event.preventDefault();
      target.click();
    }
  });

  // ---- consent ------------------------------------------------------------------------------
  function setupConsent(form) {
    const box = form.querySelector("input[name=consent]");
    const error = document.getElementById("consent-error");
    if (!error.hidden) error.focus();  // the server's answer to an unticked box
    form.addEventListener("submit", function (event) {
      if (box.checked) return;
      event.preventDefault();
      error.textContent = "Please tick the box to agree before starting.";
      box.setAttribute("aria-invalid", "true");
      focusMessage(error);
    });
    box.addEventListener("change", function () {
      if (!box.checked) return;
      box.removeAttribute("aria-invalid");
      error.hidden = true;
      error.textContent = "";
    });
  }

  // ---- trials -------------------------------------------------------------------------------
  function setupTrial(root) {
    const data = JSON.parse(document.getElementById("trial-data").textContent);
    const started = performance.now();
    const isPair = data.task === "pair";
    const sides = isPair ? ["left", "right"] : ["left"];
    const submit = document.getElementById("submit");
    const hint = document.getElementById("hint");
    const errorBox = document.getElementById("error");
    const reported = [];          // play / ended events on their way to the server
    const sent = {};
    let sending = false;
    let waitUntil = 0;            // the server asked us to wait before answering again

    const player = window.ListenPlayer.create(root.querySelector(".player"), data.audio, {
      onHeard: function (side) { report(side, "play"); },
      onChange: update,
      onStatus: showError,
    });

    function report(side, event) {
      const key = side + ":" + event;
      if (sent[key]) return;
      sent[key] = true;
      reported.push(postJSON(data.play_url, { side: side, event: event }).catch(function () {}));
    }

    function showError(message) {
      if (errorBox.textContent !== message) errorBox.textContent = message;
      errorBox.hidden = !message;
    }

    // Pairs: each clip heard for a quarter of its length (any part); ratings: the whole clip.
    function heardEnough(side) {
      if (isPair) {
        return data.played[side] || (player.duration() > 0 && player.heardSeconds(side) >= 0.25 * player.duration());
      }
      return data.ended[side] || player.heardWhole(side);
    }

    function listened() { return sides.every(heardEnough); }

    function answer() {
      if (isPair) {
        const checked = root.querySelector("input[name=chosen]:checked");
        return checked ? { chosen: checked.value } : null;
      }
      const ratings = {};
      for (const fieldset of root.querySelectorAll("fieldset.scale")) {
        const checked = fieldset.querySelector("input:checked");
        if (!checked) return null;
        ratings[fieldset.dataset.attribute] = parseInt(checked.value, 10);
      }
      return { ratings: ratings };
    }

    function update() {
      const ready = listened();
      sides.forEach(function (side) {
        const radio = root.querySelector("[role=radio][data-side=" + side + "]");
        if (radio && heardEnough(side) && !radio.dataset.heard) radio.dataset.heard = "true";
        if (!isPair && player.heardWhole(side)) report(side, "ended");
      });
      root.querySelectorAll("input[type=radio]").forEach(function (input) { input.disabled = !ready; });
      if (ready) player.setText(hint, isPair ? "Now choose A or B." : "Now rate the clip on every scale.");
      else if (isPair && heardEnough("left") !== heardEnough("right")) {
        player.setText(hint, "Now listen to " + (heardEnough("left") ? "B" : "A") + " as well.");
      } else if (!isPair && player.atEnd() && player.heardSeconds("left") > 0) {
        player.setText(hint, "Parts of the clip were skipped. Play it once more without jumping ahead, then rate it.");
      }
      const wasFocused = document.activeElement === submit;
      submit.disabled = !(ready && answer()) || performance.now() < waitUntil;
      if (wasFocused && submit.disabled) (errorBox.hidden ? hint : errorBox).focus();  // keep focus on the page
    }

    function retryLater(message, delayMs) {
      waitUntil = performance.now() + delayMs;
      showError(message);
      update();
      window.setTimeout(function () {
        waitUntil = 0;
        const wasOnMessage = document.activeElement === errorBox;
        showError("You can send your answer now.");
        update();
        if (wasOnMessage && !submit.disabled) submit.focus();
      }, delayMs);
    }

    function handleRefusal(status, result) {
      const code = result.code || result.error;
      if (status === 200 || /^(already_recorded|expired|out_of_order|study_closed)$/.test(code)) {
        window.location.assign(result.next);
        return;
      }
      const delayMs = Number(result.retry_after_ms);
      if (code === "audio_not_fetched") (result.sides || []).forEach(function (side) { player.refetch(side); });
      if (delayMs >= 0 && isFinite(delayMs)) {
        const seconds = Math.max(1, Math.ceil(delayMs / 1000));
        const reason = code === "study_paused" ? "The study is paused for a moment." :
          code === "audio_not_fetched" ? "The sound has not finished loading." : "Please keep listening a little longer.";
        retryLater(reason + " Your choice is kept; you can send it in about " + seconds + "\u00a0s.", delayMs);
      } else {
        showError(result.message || "Something went wrong; please try again.");
        update();
      }
    }

    function send() {
      const body = answer();
      if (!body || !listened() || sending || submit.disabled) return;
      sending = true;
      body.answer_key = data.answer_key;
      body.response_time_ms = Math.round(performance.now() - started);
      const settled = reported.concat([player.loaded.catch(function () {})]);  // events and audio first
      Promise.all(settled).then(function () { return postJSON(data.answer_url, body); }).then(function (response) {
        return response.json().then(function (result) { return { status: response.status, result: result }; });
      }).then(function (reply) {
        sending = false;
        handleRefusal(reply.status, reply.result);
      }).catch(function () {
        sending = false;
        showError("Could not reach the server; check your connection and press Next again.");
        update();
      });
    }

    function choose(input) {
      input.checked = true;
      input.focus();
      update();
    }

    submit.addEventListener("click", send);
    root.addEventListener("change", update);

    document.addEventListener("keydown", function (event) {
      if (shortcutsOff(event)) return;
      const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
      if (key === "p" || key === " ") {
        if (!event.repeat) player.toggle();
      } else if (key === "ArrowLeft" || key === "ArrowRight") {
        player.seekBy((key === "ArrowLeft" ? -1 : 1) * player.seekStep());
      } else if (isPair && (key === "a" || key === "b")) {
        player.hear(key === "a" ? "left" : "right");
      } else if (isPair && (key === "1" || key === "2") && listened()) {
        choose(root.querySelector("input[name=chosen][value=" + (key === "1" ? "left" : "right") + "]"));
      } else if (!isPair && /^[1-5]$/.test(key) && listened()) {
        const scales = Array.from(root.querySelectorAll("fieldset.scale"));
        const open = scales.find(function (f) { return !f.querySelector("input:checked"); }) || scales[scales.length - 1];
        choose(open.querySelector("input[value='" + key + "']"));
      } else if (key === "Enter") {
        send();
      } else {
        return;
      }
      event.preventDefault();
    });
    update();
  }

  // ---- headphone screening ------------------------------------------------------------------
  function setupScreening(root) {
    const buttons = Array.from(root.querySelectorAll("button[name=answer]"));
    const hint = document.getElementById("screening-hint");
    const player = window.ListenPlayer.create(root.querySelector(".player"), { left: root.dataset.src }, {
      onHeard: function () {
        buttons.forEach(function (button) { button.disabled = false; });
        hint.textContent = "Which noise had the tone?";
      },
      onStatus: function (message) { hint.textContent = message; },
    });
    const notice = document.getElementById("retry-notice");
    if (notice) notice.focus();
    document.addEventListener("keydown", function (event) {
      if (shortcutsOff(event)) return;
      const key = event.key.toLowerCase();
      if (key === "p" || key === " ") {
        if (!event.repeat) player.toggle();
      } else if (/^[1-3]$/.test(key) && !buttons[0].disabled) {
        buttons[parseInt(key, 10) - 1].click();
      } else {
        return;
      }
      event.preventDefault();
    });
  }

  // ---- end page -----------------------------------------------------------------------------
  // Back to the platform after a few seconds, unless the listener starts using the page (a key
  // or a touch): then the link waits for them, so nobody is hurried off the page.
  function setupReturn(link) {
    const hint = document.getElementById("return-hint");
    const timer = window.setTimeout(function () { window.location.assign(link.dataset.redirect); }, 3000);
    function hold() {
      window.clearTimeout(timer);
      hint.textContent = "Use the button above when you are ready.";
      document.removeEventListener("keydown", hold, true);
      document.removeEventListener("pointerdown", hold, true);
    }
    document.addEventListener("keydown", hold, true);
    document.addEventListener("pointerdown", hold, true);
  }

  const consent = document.getElementById("consent-form");
  if (consent) setupConsent(consent);
  const trial = document.getElementById("trial");
  if (trial) setupTrial(trial);
  const screening = document.getElementById("screening");
  if (screening) setupScreening(screening);
  const returnLink = document.getElementById("return-link");
  if (returnLink && returnLink.dataset.redirect) setupReturn(returnLink);
})();
