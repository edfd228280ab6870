// The playground: one WebSocket per message, opened with a short-lived member ticket that the
// console hands out (POST, CSRF-protected). The page never holds an API key. Events are the chat
// stream's (PROTOCOL.md §5): content, thinking, tool_start, tool_result, agent, error, done; then
// {"status": "complete"}.
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("pg-config").textContent);
  var form = document.getElementById("pg-form");
  var transcript = document.getElementById("pg-transcript");
  var errorBox = document.getElementById("pg-error");
  var statusLine = document.getElementById("pg-status");
  var sendButton = document.getElementById("pg-send");
  var stopButton = document.getElementById("pg-stop");
  var message = document.getElementById("pg-message");
  var target = document.getElementById("pg-target");
  var pattern = document.getElementById("pg-pattern");
  var multi = document.getElementById("pg-multi");
  var branching = document.getElementById("pg-branching");
  var threadsBox = document.getElementById("pg-threads");
  var threadId = config.threadId;
  var picked = []; // agents of a pattern, in the order they were ticked
  var socket = null;

  function csrfToken() {
    var field = form.querySelector("input[name=csrfmiddlewaretoken]");
    return field ? field.value : "";
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function pretty(value) {
    try { return JSON.stringify(value, null, 2); } catch (e) { return String(value); }
  }

  function showError(text) {
    errorBox.textContent = text;
    errorBox.hidden = false;
  }

  function clearError() {
    errorBox.textContent = "";
    errorBox.hidden = true;
  }

  function describeError(event) {
    var first = String(event.error || "Something went wrong");
    var parts = [/[.!?]$/.test(first) ? first : first + "."];
    var status = event.status ? " " + event.status : "";
    var code = event.code || "";
    var hint = "";
    if (code === "quota_exceeded" || event.status === 402) hint = "The team's quota is used up for this period.";
    else if (code === "scope_violation") hint = "Your role may not do this" + (event.required_scope ? " (needs " + event.required_scope + ")" : "") + ".";
    else if (code === "unauthenticated") hint = "Your access to this team has changed; reload the page.";
    else if (event.status >= 502) hint = "The model's provider failed.";
    if (hint) parts.push(hint);
    return parts.join(" ") + (code ? " [" + code + status + "]" : "");
  }

  // --- The form: what a message is sent to ----------------------------------------------------

  function patternValue() { return pattern ? pattern.value : ""; }

  function refreshPatternFields() {
    if (!pattern) return;
    var value = patternValue();
    multi.hidden = !(value === "route" || value === "sequential" || value === "parallel");
    branching.hidden = value !== "branching";
    document.getElementById("pg-aggregator-field").hidden = value !== "parallel";
    document.getElementById("pg-router-field").hidden = value !== "route";
    var help = {
      route: "(the candidates: one of them answers)",
      sequential: "(each step sees the previous answer; in the order you tick them)",
      parallel: "(they answer at once)"
    };
    document.getElementById("pg-multi-help").textContent = help[value] || "";
    target.disabled = value !== "";
  }

  function renumber() {
    multi.querySelectorAll("input[name=agents]").forEach(function (box) {
      var index = picked.indexOf(box.value);
      box.parentNode.querySelector(".pg-order").textContent = index >= 0 ? "#" + (index + 1) : "";
    });
  }

  if (pattern) {
    pattern.addEventListener("change", refreshPatternFields);
    multi.addEventListener("change", function (event) {
      var box = event.target;
      if (box.name !== "agents") return;
      picked = picked.filter(function (slug) { return slug !== box.value; });
      if (box.checked) picked.push(box.value);
      renumber();
    });
    refreshPatternFields();
  }

  function requestBody(text) {
    var body = { messages: [{ role: "user", content: text }], thread_id: threadId };
    var value = patternValue();
    if (value === "") {
      var chosen = target.value;
      if (chosen.indexOf("agent:") === 0) {
        body.agent = chosen.slice(6);
      } else {
        body.model = chosen.slice(6);
        body.agent = null; // a model was chosen: talk to it even on a thread an agent holds
      }
      return body;
    }
    body.pattern = value;
    if (value === "branching") {
      body.agent = document.getElementById("pg-first").value;
      body.branches = [];
      branching.querySelectorAll("[data-branch]").forEach(function (row) {
        var when = row.querySelector("input[name=when_value]").value;
        if (!when) return;
        var condition = {};
        condition[row.querySelector("select[name=when_kind]").value] = when;
        body.branches.push({ when: condition, agent: row.querySelector("select[name=branch_agent]").value });
      });
      var fallback = document.getElementById("pg-default-branch").value;
      if (fallback) body.branches.push({ agent: fallback });
      return body;
    }
    body.agents = picked.slice();
    if (value === "parallel" && document.getElementById("pg-aggregator").value) {
      body.aggregator = document.getElementById("pg-aggregator").value;
    }
    if (value === "route" && document.getElementById("pg-router").value) {
      body.agent = document.getElementById("pg-router").value;
      if (!body.agents.length) delete body.agents; // the router's handoffs are the candidates
    }
    return body;
  }

  // --- The transcript --------------------------------------------------------------------------

  function addUserMessage(text) {
    var article = el("article", "pg-msg pg-user");
    article.dataset.role = "user";
    article.appendChild(el("header", "pg-msg-head", "You"));
    article.appendChild(el("div", "pg-text", text));
    transcript.appendChild(article);
  }

  function Reply() {
    this.bubbles = {}; // "<agent>:<step>" (or "") -> its <article>
    this.tools = {}; // call id -> its <details>
    this.last = null;
    this.thinking = null;
  }

  Reply.prototype.bubble = function (agent, step) {
    var key = agent ? agent + ":" + (step === undefined ? "" : step) : "";
    if (!this.bubbles[key]) {
      var article = el("article", "pg-msg pg-assistant pg-streaming");
      article.dataset.role = "assistant";
      var head = el("header", "pg-msg-head");
      if (agent) head.appendChild(el("span", "pg-agent-name", agent));
      else head.appendChild(document.createTextNode("Assistant"));
      article.appendChild(head);
      article.appendChild(el("div", "pg-tools"));
      article.appendChild(el("div", "pg-text"));
      transcript.appendChild(article);
      this.bubbles[key] = article;
    }
    this.last = this.bubbles[key];
    return this.last;
  };

  Reply.prototype.content = function (event) {
    if (this.thinking) { this.thinking.remove(); this.thinking = null; }
    var text = this.bubble(event.agent, event.step).querySelector(".pg-text");
    text.textContent += event.content || "";
  };

  Reply.prototype.think = function (event) {
    var article = this.bubble(event.agent, event.step);
    if (!this.thinking) {
      this.thinking = el("div", "pg-thinking", "thinking…");
      article.insertBefore(this.thinking, article.querySelector(".pg-text"));
    }
    if (event.content) this.thinking.textContent = "thinking: " + event.content;
  };

  Reply.prototype.agent = function (event) {
    var line = "→ " + event.agent + " answers";
    var details = [];
    if (event.step !== undefined) details.push("step " + event.step);
    if (event.pattern) details.push(event.pattern);
    if (event.reason) details.push(event.reason);
    if (event.score !== undefined) details.push("score " + Number(event.score).toFixed(2));
    if (details.length) line += " (" + details.join(" · ") + ")";
    var marker = el("p", "pg-switch", line);
    marker.dataset.agent = event.agent;
    transcript.appendChild(marker);
    this.bubble(event.agent, event.step);
  };

  Reply.prototype.toolStart = function (event) {
    var box = el("details", "pg-tool");
    box.open = true;
    var summary = el("summary");
    summary.appendChild(document.createTextNode("Tool "));
    summary.appendChild(el("code", "pg-tool-name", event.tool));
    var state = el("span", "pg-tool-state", " running…");
    summary.appendChild(state);
    box.appendChild(summary);
    var body = el("div", "pg-tool-body");
    var args = el("div");
    args.appendChild(el("span", "pg-label", "Arguments"));
    args.appendChild(el("pre", "pg-tool-args", pretty(event.arguments)));
    body.appendChild(args);
    box.appendChild(body);
    this.bubble(event.agent, event.step).querySelector(".pg-tools").appendChild(box);
    this.tools[event.call_id] = box;
  };

  Reply.prototype.toolResult = function (event) {
    var box = this.tools[event.call_id];
    if (!box) { this.toolStart(event); box = this.tools[event.call_id]; }
    var failed = event.error !== undefined;
    box.querySelector(".pg-tool-state").textContent = failed ? " failed" : " done";
    box.querySelector(".pg-tool-state").className = failed ? "pg-tool-state pg-bad" : "pg-tool-state pg-ok";
    var part = el("div");
    part.appendChild(el("span", "pg-label", failed ? "Error" : "Result"));
    var shown = failed ? event.error + (event.code ? " [" + event.code + "]" : "") : pretty(event.result);
    part.appendChild(el("pre", failed ? "pg-tool-error" : "pg-tool-result", shown));
    box.querySelector(".pg-tool-body").appendChild(part);
  };

  Reply.prototype.error = function (event) {
    if (this.thinking) { this.thinking.remove(); this.thinking = null; }
    showError(describeError(event));
  };

  Reply.prototype.done = function (event) {
    this.stored = true;
    var usage = event.usage || {};
    var keys = Object.keys(this.bubbles);
    var reply = (event.message && event.message.content) || "";
    if (keys.length === 0 || (event.agents && this.last && this.last.querySelector(".pg-text").textContent !== reply)) {
      // Parallel answers without an aggregator: the reply is every answer, merged.
      var final = this.bubble("", undefined);
      if (!final.querySelector(".pg-text").textContent) final.querySelector(".pg-text").textContent = reply;
    }
    keys.forEach(function (key) { this.bubbles[key].classList.remove("pg-streaming"); }, this);
    var footer = el("footer", "pg-usage",
      (usage.input_tokens || 0) + " in · " + (usage.output_tokens || 0) + " out" +
      (event.model ? " · " + event.model : "") +
      (event.message && event.message.status === "incomplete" ? " · incomplete" : ""));
    (this.last || transcript).appendChild(footer);
    Object.keys(this.bubbles).forEach(function (key) { this.bubbles[key].classList.remove("pg-streaming"); }, this);
  };

  // --- Sending ---------------------------------------------------------------------------------

  function busy(on) {
    sendButton.disabled = on;
    stopButton.disabled = !on;
    transcript.setAttribute("aria-busy", on ? "true" : "false");
    statusLine.textContent = on ? "Streaming…" : "";
  }

  function ticket() {
    return fetch(config.ticketUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken(), "Accept": "application/json" }
    }).then(function (response) {
      if (response.status === 201) return response.json();
      if (response.status === 404 || response.status === 403) throw new Error("You are no longer allowed in this team's playground; reload the page.");
      if (response.status === 302 || response.redirected) throw new Error("Your session ended; sign in again.");
      throw new Error("Could not get a stream ticket (HTTP " + response.status + ").");
    });
  }

  function refreshThreads() {
    var url = config.threadsUrl + "?current=" + encodeURIComponent(threadId);
    return fetch(url, { credentials: "same-origin" }).then(function (response) {
      if (!response.ok) return;
      return response.text().then(function (html) { threadsBox.innerHTML = html; });
    });
  }

  function send(text) {
    clearError();
    busy(true);
    addUserMessage(text);
    var reply = new Reply();
    var ended = false;
    var body = requestBody(text);
    ticket().then(function (issued) {
      var scheme = location.protocol === "https:" ? "wss://" : "ws://";
      socket = new WebSocket(scheme + location.host + (issued.ws_path || config.wsPath) + "?ticket=" + encodeURIComponent(issued.ticket));
      socket.onopen = function () { socket.send(JSON.stringify(body)); };
      socket.onmessage = function (frame) {
        var event;
        try { event = JSON.parse(frame.data); } catch (e) { return; }
        if (event.status === "complete" && !event.type) {
          ended = true;
          socket.close();
          return;
        }
        if (event.type === "content") reply.content(event);
        else if (event.type === "thinking") reply.think(event);
        else if (event.type === "agent") reply.agent(event);
        else if (event.type === "tool_start") reply.toolStart(event);
        else if (event.type === "tool_result") reply.toolResult(event);
        else if (event.type === "error") reply.error(event);
        else if (event.type === "done") reply.done(event);
        transcript.scrollTop = transcript.scrollHeight;
      };
      socket.onclose = function (close) {
        socket = null;
        busy(false);
        if (!ended && close.code !== 4401) showError("The connection closed before the reply ended (code " + close.code + ").");
        if (config.isNewThread && reply.stored) {
          config.isNewThread = false;
          var heading = document.getElementById("pg-thread-heading");
          heading.firstChild.textContent = text.length > 80 ? text.slice(0, 79) + "…" : text;
          history.replaceState(null, "", config.pageUrl + "?thread=" + encodeURIComponent(threadId));
        }
        refreshThreads();
      };
      socket.onerror = function () { if (!ended) showError("The stream's connection failed."); };
    }).catch(function (failure) {
      busy(false);
      showError(failure.message);
    });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = message.value;
    if (!text.trim() || socket) return;
    message.value = "";
    send(text);
  });

  message.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  stopButton.addEventListener("click", function () {
    if (socket && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify({ type: "cancel" }));
      statusLine.textContent = "Stopping…";
    }
  });

  threadsBox.addEventListener("click", function (event) {
    var more = event.target.closest("[data-more-threads]");
    if (!more) return;
    event.preventDefault();
    fetch(more.getAttribute("href"), { credentials: "same-origin" }).then(function (response) {
      return response.ok ? response.text() : "";
    }).then(function (html) {
      if (!html) return;
      more.insertAdjacentHTML("afterend", html);
      more.remove();
    });
  });
})();
