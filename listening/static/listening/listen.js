// Listener pages: trial answering (pair / rating), headphone screening, return redirect.
// Answers unlock only after the server has counted the needed plays (it checks them again).
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

  function typing(event) {
    return event.ctrlKey || event.metaKey || event.altKey ||
      (event.target && /^(INPUT|TEXTAREA|SELECT)$/.test(event.target.tagName) && event.target.type !== "radio");
  }

  function togglePlay(audio) {
    if (audio.paused) { audio.play(); } else { audio.pause(); }
  }

  // ---- trials -------------------------------------------------------------------------
  function setupTrial(root) {
    const data = JSON.parse(document.getElementById("trial-data").textContent);
    const started = performance.now();
    const audios = Array.from(root.querySelectorAll("audio"));
    const played = Object.assign({ left: false, right: false }, data.played);  // kept across reloads
    const ended = Object.assign({ left: false, right: false }, data.ended);
    const submit = document.getElementById("submit");
    const hint = document.getElementById("hint");
    const errorBox = document.getElementById("error");
    const isPair = data.task === "pair";
    let sending = false;

    function showError(message) {
      errorBox.textContent = message;
      errorBox.hidden = !message;
    }

    function listened() {
      return isPair ? played.left && played.right : ended.left;
    }

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
      root.querySelectorAll("input[type=radio]").forEach(function (input) { input.disabled = !ready; });
      if (ready) {
        hint.textContent = isPair ? "Now choose A or B." : "Now rate the clip on every scale.";
      }
      submit.disabled = !(ready && answer()) || sending;
    }

    audios.forEach(function (audio) {
      const side = audio.dataset.side;
      audio.addEventListener("play", function () {
        audios.forEach(function (other) { if (other !== audio) other.pause(); });
        postJSON(data.play_url, { side: side, event: "play" }).then(function (response) {
          if (response.ok) { played[side] = true; update(); }
        });
      });
      audio.addEventListener("ended", function () {
        postJSON(data.play_url, { side: side, event: "ended" }).then(function (response) {
          if (response.ok) { ended[side] = true; update(); }
        });
      });
    });
    root.addEventListener("change", update);

    submit.addEventListener("click", function () {
      const body = answer();
      if (!body || !listened() || sending) return;
      sending = true;
      update();
      showError("");
      body.answer_key = data.answer_key;
      body.response_time_ms = Math.round(performance.now() - started);
      postJSON(data.answer_url, body).then(function (response) {
        return response.json().then(function (result) { return { status: response.status, result: result }; });
      }).then(function (reply) {
        const result = reply.result;
        if (reply.status === 200 || result.error === "already_recorded" || result.error === "expired" ||
            result.error === "out_of_order") {
          window.location.assign(result.next);
          return;
        }
        sending = false;
        showError(result.message || "Something went wrong; please try again.");
        update();
      }).catch(function () {
        sending = false;
        showError("Could not reach the server; check your connection and press Next again.");
        update();
      });
    });

    document.addEventListener("keydown", function (event) {
      if (typing(event)) return;
      const key = event.key.toLowerCase();
      if (isPair) {
        if (key === "1" || key === "2") {
          togglePlay(audios[key === "1" ? 0 : 1]);
        } else if ((key === "a" || key === "b" || key === "arrowleft" || key === "arrowright") && listened()) {
          const side = key === "a" || key === "arrowleft" ? "left" : "right";
          const input = root.querySelector("input[name=chosen][value=" + side + "]");
          input.checked = true;
          input.focus();
        } else if (key !== "enter") {
          return;
        }
      } else if (key === "p" || key === " ") {
        togglePlay(audios[0]);
      } else if (/^[1-5]$/.test(key) && listened()) {
        const open = Array.from(root.querySelectorAll("fieldset.scale")).find(function (f) {
          return !f.querySelector("input:checked");
        }) || root.querySelector("fieldset.scale:last-of-type");
        const input = open.querySelector("input[value='" + key + "']");
        input.checked = true;
        input.focus();
      } else if (key !== "enter") {
        return;
      }
      event.preventDefault();
      update();
      if (key === "enter" && !submit.disabled) submit.click();
    });
    update();
  }

  // ---- headphone screening ---------------------------------------------------------------
  function setupScreening(root) {
    const audio = document.getElementById("screening-audio");
    const buttons = Array.from(root.querySelectorAll("button[name=answer]"));
    audio.addEventListener("play", function () {
      buttons.forEach(function (button) { button.disabled = false; });
      document.getElementById("screening-hint").textContent = "Which noise had the tone?";
    });
    document.addEventListener("keydown", function (event) {
      if (typing(event)) return;
      const key = event.key.toLowerCase();
      if (key === "p") { togglePlay(audio); event.preventDefault(); }
      if (/^[1-3]$/.test(key) && !buttons[0].disabled) { buttons[parseInt(key, 10) - 1].click(); }
    });
  }

  // ---- end page ----------------------------------------------------------------------------
  function setupReturn(link) {
    window.setTimeout(function () { window.location.assign(link.dataset.redirect); }, 3000);
  }

  const trial = document.getElementById("trial");
  if (trial) setupTrial(trial);
  const screening = document.getElementById("screening");
  if (screening) setupScreening(screening);
  const returnLink = document.getElementById("return-link");
  if (returnLink) setupReturn(returnLink);
})();
