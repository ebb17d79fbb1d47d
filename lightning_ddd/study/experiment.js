// A lightning-ddd human study, built on jsPsych 8. The design (window.DDD_STUDY, from design.js) says which
// experiment, which images and in which order. Every answer is kept in the browser's local storage at once, so a
// reload resumes where the observer left off without losing or repeating a trial; at the end the answers of
// all sessions are saved as one download in jsPsych's CSV form (one row per trial).
(function () {
  "use strict";
  var S = window.DDD_STUDY;
  var KEY = "lightning-ddd-study-" + S.study_id;
  var storage = window.localStorage;
  var pid = null, done = [], answered = {}, total = S.trials.length;

  function load() {
    try { done = JSON.parse(storage.getItem(KEY + "-" + pid) || "[]"); } catch (e) { done = []; }
    answered = {};
    done.forEach(function (row) { answered[row.trial_number] = true; });
  }
  function keep(row) {
    done.push(row);
    answered[row.trial_number] = true;
    storage.setItem(KEY + "-" + pid, JSON.stringify(done));
    storage.setItem(KEY + "-current", pid);
    jsPsych.progressBar.progress = Math.min(1, done.length / total);
    if (done.length === total) save();  // the download, as soon as the last trial is answered
  }
  function image(id, side) {
    var s = S.samples[String(id)];
    return "<img class='ddd-image' src='" + s.image + "' data-id='" + id + "'" +
      (side ? " data-side='" + side + "'" : "") + " alt='image'>";
  }
  function when(condition, trial) {  // jsPsych runs conditional_function on timeline nodes, not on trials
    return {timeline: [trial], conditional_function: condition};
  }
  function plain(data) {  // the row as stored: jsPsych's fields and ours, nothing that is not JSON
    return JSON.parse(JSON.stringify(data));
  }

  var jsPsych = initJsPsych({
    show_progress_bar: true,
    auto_update_progress_bar: false,
    message_progress_bar: "Progress",
    on_finish: finish
  });

  ["participant", "PROLIFIC_PID", "workerId", "participant_id"].some(function (name) {
    var v = jsPsych.data.getURLVariable(name);
    if (v) { pid = String(v); }
    return Boolean(v);
  });
  if (!pid) {  // a reload: the observer whose study is not finished yet
    var current = storage.getItem(KEY + "-current");
    if (current && !storage.getItem(KEY + "-" + current + "-finished")) pid = current;
  }
  if (pid) load();

  var timeline = [];
  timeline.push(when(function () { return !pid; }, {
    type: jsPsychSurveyText,
    questions: [{prompt: "Please enter your participant id:", name: "participant", required: true}],
    button_label: "Continue",
    data: {task: "participant"},
    on_finish: function (data) { pid = String(data.response.participant).trim() || "anonymous"; load(); }
  }));
  timeline.push({
    type: jsPsychPreload,
    images: Object.keys(S.samples).map(function (id) { return S.samples[id].image; }),
    message: "Loading the images ...",
    show_detailed_errors: true
  });
  timeline.push({
    type: jsPsychInstructions,
    pages: function () { return done.length ? [S.text.welcome_back] : S.text.instructions; },
    show_clickable_nav: true,
    button_label_next: "Next",
    button_label_previous: "Back",
    allow_keys: false,
    data: {task: "instructions"},
    on_start: function () { jsPsych.progressBar.progress = Math.min(1, done.length / total); }
  });

  var first_main = null;
  S.trials.forEach(function (t, n) {
    if (!t.practice && first_main === null) {
      first_main = t.trial;
      timeline.push(when(function () {
        return !answered[t.trial] && S.trials.some(function (p) { return p.practice; });
      }, {type: jsPsychHtmlButtonResponse, stimulus: S.text.main_start, choices: ["Start"], data: {task: "message"}}));
    }
    var main_index = t.practice ? -1 : t.trial - first_main;
    if (S.break_every > 0 && main_index > 0 && main_index % S.break_every === 0) {
      timeline.push(when(function () { return !answered[t.trial]; }, {
        type: jsPsychHtmlButtonResponse,
        stimulus: "<p>Time for a short break. " + main_index + " of " + (total - first_main) +
          " trials are done.</p><p>Continue when you are ready.</p>",
        choices: ["Continue"],
        data: {task: "break"}
      }));
    }
    timeline.push(when(function () { return !answered[t.trial]; },
                       S.experiment === "2afc" ? choiceTrial(t) : ratingTrial(t)));
    if (S.experiment === "2afc" && t.practice) {
      timeline.push(when(function () {  // only right after this practice trial was answered
        return done.length > 0 && done[done.length - 1].trial_number === t.trial && !answered[t.trial + 1];
      }, {
        type: jsPsychHtmlButtonResponse,
        stimulus: function () {
          var last = done[done.length - 1];
          return last && last.correct ? "<p class='ddd-feedback'>Yes: the networks got that image wrong.</p>" :
            "<p class='ddd-feedback'>No: the networks got the other image wrong and this one right.</p>";
        },
        choices: ["Next"],
        data: {task: "feedback"}
      }));
    }
  });
  timeline.push({
    type: jsPsychHtmlButtonResponse,
    stimulus: function () {
      return "<p>Thank you! Your " + done.length + " answers are saved as <b>" + fileName("csv") +
        "</b> (your browser's downloads).</p><p>Please send that file to the experimenter.</p>";
    },
    choices: ["Save again"],
    data: {task: "end"},
    on_finish: function () { save(); }
  });

  function choiceTrial(t) {
    var listener = null, source = "click";
    return {
      type: jsPsychHtmlButtonResponse,
      stimulus: S.text.question,
      choices: [image(t.left, "left"), image(t.right, "right")],
      button_html: function (choice, i) {
        return "<button class='jspsych-btn ddd-choice' data-side='" + (i ? "right" : "left") + "'>" + choice +
          "</button>";
      },
      prompt: S.text.keys,
      data: {task: "2afc", study_id: S.study_id, trial_number: t.trial, pair_id: t.pair_id, practice: t.practice,
        left_id: t.left, right_id: t.right, trivial_side: t.trivial_side},
      on_load: function () {
        source = "click";
        listener = jsPsych.pluginAPI.getKeyboardResponse({
          callback_function: function (info) {
            var key = String(info.key).toLowerCase();
            source = "key";
            var buttons = document.querySelectorAll("#jspsych-html-button-response-btngroup .ddd-choice");
            buttons[key === "f" || key === "arrowleft" ? 0 : 1].click();
          },
          valid_responses: ["f", "j", "arrowleft", "arrowright"],
          rt_method: "performance",
          persist: false,
          allow_held_key: false
        });
      },
      on_finish: function (data) {
        if (listener) jsPsych.pluginAPI.cancelKeyboardResponse(listener);
        data.participant = pid;
        data.response_side = data.response === 0 ? "left" : "right";
        data.response_source = source;
        data.chosen_id = data.response === 0 ? t.left : t.right;
        data.correct = data.response_side !== t.trivial_side;  // the impossible image is the harder one
        keep(plain(data));
      }
    };
  }

  function ratingTrial(t) {
    return {
      type: jsPsychSurveyHtmlForm,
      preamble: image(t.sample_id, null),
      html: S.text.rating_form,
      button_label: "Next",
      data: {task: "ratings", study_id: S.study_id, trial_number: t.trial, sample_id: t.sample_id},
      on_finish: function (data) {
        data.participant = pid;
        data.categories = Number(data.response.categories);
        data.main_category = data.response.main_category;
        data.odd = data.response.odd;
        keep(plain(data));
      }
    };
  }

  function fileName(ext) {
    return "ddd-study-" + S.study_id + "-" + String(pid).replace(/[^A-Za-z0-9_-]+/g, "_") + "." + ext;
  }
  function save() {  // jsPsych's own CSV of every session's answers, in trial order
    var rows = done.slice().sort(function (a, b) { return a.trial_number - b.trial_number; });
    var collection = jsPsych.data.get().filterCustom(function () { return false; });
    rows.forEach(function (row) { collection.push(row); });
    collection.localSave("csv", fileName("csv"));
  }
  function finish() {
    storage.setItem(KEY + "-" + pid + "-finished", "1");
  }

  jsPsych.run(timeline);
})();
