/* Handoff's own script: keyboard triage, selection and bulk bar, the JSON editor, dialogs.
   No inline handlers anywhere (the CSP forbids them): everything is a listener set up here. */
(function () {
  "use strict";

  var focusedCase = null;
  var focusedIndex = 0;

  // A conflict (409) or a refused action (422) comes with the fresh fragment and a message:
  // swap it in like a success so the person sees why and what the case looks like now. A 403
  // is swapped only when it is such a fragment (it says how to swap it), never an error page.
  document.addEventListener("htmx:beforeSwap", function (evt) {
    var xhr = evt.detail.xhr;
    var status = xhr.status;
    if (status === 409 || status === 422 || (status === 403 && xhr.getResponseHeader("HX-Reswap"))) {
      evt.detail.shouldSwap = true;
      evt.detail.isError = false;
    }
  });

  function results() { return document.getElementById("results"); }
  function rows() {
    var box = results();
    return box ? Array.prototype.slice.call(box.querySelectorAll("tr[data-row]")) : [];
  }
  function currentRow() {
    var all = rows();
    if (!all.length) { return null; }
    if (focusedIndex >= all.length) { focusedIndex = all.length - 1; }
    if (focusedIndex < 0) { focusedIndex = 0; }
    return all[focusedIndex];
  }

  function focusRow(index, keepFocus) {
    var all = rows();
    if (!all.length) { return; }
    focusedIndex = Math.max(0, Math.min(index, all.length - 1));
    all.forEach(function (row) { row.classList.remove("is-focused"); });
    var row = all[focusedIndex];
    row.classList.add("is-focused");
    focusedCase = row.dataset.case;
    if (!keepFocus) {
      row.focus({ preventScroll: true });
      row.scrollIntoView({ block: "nearest" });
    }
  }

  function restoreFocus() {
    var all = rows();
    if (!all.length || focusedCase === null) { return; }
    var found = all.findIndex(function (row) { return row.dataset.case === focusedCase; });
    // Take the keyboard focus back only if the swap lost it; never from where the person
    // went meanwhile (the search box, a select of the bulk bar).
    var active = document.activeElement;
    var box = results();
    var lost = !active || active === document.body || (box && box.contains(active));
    focusRow(found >= 0 ? found : focusedIndex, !lost);
  }

  function queryNow() {
    var box = results();
    return box ? box.dataset.query || "" : "";
  }

  function syncQueryFields() {
    var query = queryNow();
    document.querySelectorAll("[data-bulk-query], [data-view-query]").forEach(function (input) {
      input.value = query;
    });
    document.querySelectorAll("[data-view-link]").forEach(function (link) {
      var linkQuery = (link.getAttribute("href") || "").replace(/^\?/, "");
      if (linkQuery === query) { link.setAttribute("aria-current", "true"); }
      else { link.removeAttribute("aria-current"); }
    });
    updateSelectedCount();
  }

  // --- selection and the bulk bar -------------------------------------------------------------

  function selectionBoxes() {
    return Array.prototype.slice.call(
      document.querySelectorAll('input[form="bulk"][name="case"], input[form="bulk"][name="group"]')
    );
  }

  function updateSelectedCount() {
    var label = document.querySelector("[data-selected-count]");
    if (!label) { return; }
    var matching = document.querySelector("[data-scope-matching]");
    if (matching && matching.checked) {
      var count = document.querySelector("[data-testid=count]");
      label.textContent = "All matching";
      if (count) { label.textContent = "All matching (" + count.textContent.trim().split(/\s+/).slice(0, 2).join(" ") + ")"; }
    } else {
      var selected = selectionBoxes().filter(function (box) { return box.checked; }).length;
      label.textContent = selected + " selected";
    }
    selectionBoxes().forEach(function (box) {
      var row = box.closest("tr");
      if (row) { row.classList.toggle("is-selected", box.checked); }
    });
  }

  function showActionFields() {
    var select = document.getElementById("bulk-id_action");
    if (!select) { return; }
    document.querySelectorAll("[data-for-action]").forEach(function (field) {
      var hidden = field.dataset.forAction !== select.value;
      field.hidden = hidden;
      // Only the chosen action's fields are sent: two actions may ask for a field of one name.
      field.querySelectorAll("input, select, textarea").forEach(function (control) {
        control.disabled = hidden;
      });
    });
  }

  document.addEventListener("change", function (evt) {
    var target = evt.target;
    if (target.matches("[data-select-all]")) {
      selectionBoxes().forEach(function (box) { box.checked = target.checked; });
    }
    if (target.matches('input[form="bulk"], input[name="scope"], [data-select-all]')) {
      updateSelectedCount();
    }
    if (target.id === "bulk-id_action") { showActionFields(); }
  });

  document.addEventListener("submit", function (evt) {
    var form = evt.target;
    if (form.matches("[data-bulk]")) {
      syncQueryFields();
    }
    if (form.matches("[data-action-form]")) {
      evt.preventDefault();
      submitDialog(form);
    }
  });

  // --- actions from the keyboard ---------------------------------------------------------------
  // Which key does which action comes from the page (the help lists them, from the server's
  // registry of actions): nothing about the actions themselves is written down here.

  function actionKeys() {
    var keys = {};
    document.querySelectorAll("[data-action-key]").forEach(function (entry) {
      keys[entry.dataset.actionKey] = {
        action: entry.dataset.action,
        bulk: entry.hasAttribute("data-action-bulk"),
        dialog: entry.dataset.actionDialog || ""
      };
    });
    return keys;
  }

  function act(row, action, extra) {
    if (!row || !window.htmx) { return; }
    var values = extra || {};
    if (row.dataset.group) {
      // A group row acts on every member, through the bulk action.
      values.action = action;
      values.scope = "selected";
      values.group = row.dataset.group;
      values.query = queryNow();
      htmx.ajax("POST", "/queue/bulk/", { source: row, target: "#results", swap: "outerHTML", values: values });
      return;
    }
    values.version = row.dataset.version;
    htmx.ajax("POST", "/exceptions/" + row.dataset.case + "/" + action + "/", {
      source: row, target: "#results", swap: "outerHTML", values: values
    });
  }

  function pressAction(row, bound) {
    if (!row || (row.dataset.group && !bound.bulk)) { return; }
    if (!bound.dialog) { act(row, bound.action); return; }
    var dialog = document.getElementById(bound.dialog);
    if (!dialog) { return; }
    dialog.dataset.case = row.dataset.case;
    var label = dialog.querySelector("[data-dialog-case]");
    if (label) { label.textContent = row.dataset.group ? "group" : "#" + row.dataset.case; }
    dialog.querySelector("form").reset();
    dialog.showModal();
    var first = dialog.querySelector("select, input, textarea");
    if (first) { first.focus(); }
  }

  function submitDialog(form) {
    var dialog = form.closest("dialog");
    var row = rows().find(function (r) { return r.dataset.case === dialog.dataset.case; });
    var values = {};
    new FormData(form).forEach(function (value, name) { values[name] = value; });
    dialog.close();
    act(row, dialog.dataset.action, values);
  }

  document.addEventListener("click", function (evt) {
    var closer = evt.target.closest("[data-close-dialog]");
    if (closer) { closer.closest("dialog").close(); }
    var row = evt.target.closest("tr[data-row]");
    if (row && !evt.target.closest("a, button, input, label")) {
      focusRow(rows().indexOf(row));
    }
  });

  function typing(target) {
    // Focus can stay on a button of a dialog that just closed: that is not typing.
    var dialog = target.closest("dialog");
    if (dialog) { return dialog.open; }
    return target.closest("input, textarea, select, [contenteditable]");
  }

  document.addEventListener("keydown", function (evt) {
    if (!document.querySelector("[data-queue]")) { return; }
    if (evt.ctrlKey || evt.metaKey || evt.altKey) { return; }
    var target = evt.target;
    if (typing(target)) {
      if (evt.key === "Escape" && target.matches("[data-search]")) {
        target.blur();
        focusRow(focusedIndex);
      }
      return;
    }
    var row = currentRow();
    var bound = actionKeys()[evt.key];
    if (bound) {
      pressAction(row, bound);
      evt.preventDefault();
      return;
    }
    switch (evt.key) {
      case "j": focusRow(focusedCase === null ? 0 : focusedIndex + 1); break;
      case "k": focusRow(focusedIndex - 1); break;
      case "x":
        if (row) {
          var box = row.querySelector('input[type="checkbox"]');
          if (box) { box.checked = !box.checked; updateSelectedCount(); }
        }
        break;
      case "o":
      case "Enter":
        if (row && row.classList.contains("is-focused")) { window.location.href = row.dataset.url; }
        else { return; }
        break;
      case "/": {
        var search = document.querySelector("[data-search]");
        if (search) { search.focus(); search.select(); }
        break;
      }
      case "?": {
        var help = document.getElementById("help");
        if (help) { help.showModal(); }
        break;
      }
      default: return;
    }
    evt.preventDefault();
  });

  // --- groups ---------------------------------------------------------------------------------

  document.addEventListener("htmx:beforeRequest", function (evt) {
    var button = evt.detail.elt;
    if (button && button.matches && button.matches(".expand")) {
      if (button.getAttribute("aria-expanded") === "true") {
        evt.preventDefault();
        button.setAttribute("aria-expanded", "false");
        var members = document.getElementById(button.getAttribute("aria-controls"));
        if (members) { members.innerHTML = ""; }
      } else {
        button.setAttribute("aria-expanded", "true");
      }
    }
  });

  // --- the JSON editor ------------------------------------------------------------------------

  function checkJson(textarea) {
    var form = textarea.closest("form");
    var status = form ? form.querySelector("[data-json-status]") : null;
    var submit = form ? form.querySelector("[data-json-submit]") : null;
    var message = "";
    try {
      var value = JSON.parse(textarea.value);
      if (value === null || typeof value !== "object" || Array.isArray(value)) {
        message = "The payload must be a JSON object ({ … }).";
      }
    } catch (err) {
      message = "Not valid JSON: " + err.message;
    }
    textarea.setAttribute("aria-invalid", message ? "true" : "false");
    if (status) {
      status.textContent = message || "Valid JSON object.";
      status.classList.toggle("is-bad", Boolean(message));
      status.classList.toggle("is-ok", !message);
    }
    if (submit) { submit.disabled = Boolean(message); }
  }

  document.addEventListener("input", function (evt) {
    if (evt.target.matches("textarea[data-json-editor]")) { checkJson(evt.target); }
  });

  // --- after every swap and on load -----------------------------------------------------------

  function init() {
    syncQueryFields();
    showActionFields();
    document.querySelectorAll("textarea[data-json-editor]").forEach(checkJson);
  }

  // Rows are new after every swap of the results: put the focus back on the same case (or,
  // if it left the list, on the row that took its place) before the next key arrives.
  document.addEventListener("htmx:afterSwap", restoreFocus);
  document.addEventListener("htmx:afterSettle", function () {
    init();
    restoreFocus();
  });
  document.addEventListener("DOMContentLoaded", init);

  // The case file's print button: the browser's own print dialog.
  document.addEventListener("click", function (evt) {
    if (evt.target.closest && evt.target.closest("[data-print]")) { window.print(); }
  });
})();
