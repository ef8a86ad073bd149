// A run's trace as a virtualized waterfall. The server sends the skeleton (compact arrays in tree order,
// subtree totals computed there); only the rows in view are in the DOM (a few dozen, never more than
// MAX_ROWS). A span's detail, and search within the trace, are asked of the server when wanted.
(function () {
  "use strict";

  const root = document.getElementById("trace");
  if (!root) return;
  const viewport = document.getElementById("waterfall-viewport");
  const spacer = document.getElementById("waterfall-spacer");
  const detailPane = document.getElementById("span-detail");
  const statusLine = document.getElementById("trace-status");
  const searchInput = document.getElementById("trace-search-input");
  const searchResult = document.getElementById("trace-search-result");
  const ROW_HEIGHT = 24;
  const OVERSCAN = 20;
  const MAX_ROWS = 300;

  let trace = null; // {fields, kinds, statuses, spans, running}
  let col = {};
  let collapsed = new Set(); // span ids whose children are hidden
  let hiddenKinds = new Set();
  let visible = []; // row indexes shown, in order
  let selected = -1; // a row index
  let matches = new Set(); // span ids found by search
  let total = 1; // the trace's length in microseconds
  const rendered = new Map(); // row index → element

  function value(row, name) { return trace.spans[row][col[name]]; }

  function formatDuration(us) {
    if (us >= 1e6) return (us / 1e6).toFixed(2) + " s";
    if (us >= 1e3) return (us / 1e3).toFixed(1) + " ms";
    return us + " µs";
  }
  function formatCost(usd) { return usd ? "$" + usd.toFixed(4) : ""; }

  function fetchPage(page) {
    return fetch(root.dataset.skeleton + "?page=" + page, {credentials: "same-origin"}).then(function (response) {
      if (!response.ok) throw new Error("The trace could not be loaded (" + response.status + ").");
      return response.json();
    });
  }

  function loadedAll() { return !trace.total || trace.spans.length >= trace.total; }

  // data: the rows loaded so far (a prefix of the skeleton in tree order) and the skeleton's metadata.
  function adopt(data) {
    const previousId = trace && selected >= 0 ? value(selected, "id") : null;
    trace = data;
    col = {};
    data.fields.forEach(function (name, index) { col[name] = index; });
    total = 1;
    data.spans.forEach(function (span) {
      total = Math.max(total, span[col.start_us] + span[col.subtree_duration_us], span[col.start_us] + span[col.duration_us]);
    });
    selected = -1;
    if (previousId !== null) {
      for (let i = 0; i < data.spans.length; i++) if (data.spans[i][col.id] === previousId) { selected = i; break; }
    }
    computeVisible();
    statusLine.textContent = !loadedAll()
      ? "Showing the first " + data.spans.length.toLocaleString() + " of " + data.total.toLocaleString() + " spans; loading the rest…"
      : data.spans.length.toLocaleString() + " spans" + (data.running ? " · running, updates live" : "");
  }

  // The whole skeleton, a page at a time (a running run's is one page), after the first paint: the rows
  // already shown stay (same rows, same places) while the rest arrive; the main thread is given back
  // between pages. A newer load makes an older one stop; a page of another version starts it over.
  let loading = 0;
  function loadAll() {
    const token = ++loading;
    let loaded = null;
    function next(page) {
      return fetchPage(page).then(function (data) {
        if (token !== loading) return;
        if (loaded && data.version !== loaded.version) return loadAll();
        if (loaded) {
          for (let i = 0; i < data.spans.length; i++) loaded.spans.push(data.spans[i]);
        } else {
          loaded = data;
        }
        const top = viewport.scrollTop;
        adopt(Object.assign({}, loaded, {spans: loaded.spans}));
        viewport.scrollTop = top;
        paint();
        if (page + 1 < (data.pages || 1)) {
          return new Promise(function (resolve) { setTimeout(resolve, 0); }).then(function () { return next(page + 1); });
        }
      });
    }
    return next(0).catch(function (error) { statusLine.textContent = error.message; });
  }

  // The first paint uses the rows the page carries (the skeleton's first screenful); nothing else is waited for.
  function start() {
    adopt(JSON.parse(document.getElementById("trace-head").textContent));
    window.requestAnimationFrame(function () {
      performance.mark("trace:first-rows"); // for the P6 benchmark (and anyone's devtools)
      if (!loadedAll() || trace.running) setTimeout(loadAll, 0);
    });
  }

  // The rows shown: every span not inside a collapsed one, and of a kind not hidden.
  function computeVisible() {
    visible = [];
    const spans = trace.spans;
    let skipBelow = -1; // depth under which rows are skipped (inside a collapsed span)
    for (let i = 0; i < spans.length; i++) {
      const depth = spans[i][col.depth];
      if (skipBelow >= 0) {
        if (depth > skipBelow) continue;
        skipBelow = -1;
      }
      if (!hiddenKinds.has(trace.kinds[spans[i][col.kind]])) visible.push(i);
      if (collapsed.has(spans[i][col.id])) skipBelow = depth;
    }
    // Rows still to come keep their room, so the scrollbar is the trace's from the first paint.
    spacer.style.height = ((visible.length + Math.max(0, (trace.total || 0) - spans.length)) * ROW_HEIGHT) + "px";
    rendered.forEach(function (element) { element.remove(); });
    rendered.clear();
    paint();
  }

  function hasChildren(row) {
    return row + 1 < trace.spans.length && trace.spans[row + 1][col.parent] === row;
  }

  function rowElement(row, position) {
    const span = trace.spans[row];
    const element = document.createElement("div");
    const kind = trace.kinds[span[col.kind]];
    const failed = trace.statuses[span[col.status]] === "error";
    const open = trace.statuses[span[col.status]] === "open";
    element.className = "span-row kind-" + kind + (failed ? " failed" : "") + (open ? " open" : "") + (row === selected ? " selected" : "") +
      (matches.has(span[col.id]) ? " match" : "");
    element.setAttribute("role", "treeitem");
    element.dataset.row = row;
    element.dataset.span = span[col.id];
    element.style.transform = "translateY(" + (position * ROW_HEIGHT) + "px)";
    if (hasChildren(row)) element.setAttribute("aria-expanded", String(!collapsed.has(span[col.id])));

    const name = document.createElement("span");
    name.className = "span-name";
    name.style.paddingLeft = (span[col.depth] * 14) + "px";
    const toggle = document.createElement("button");
    toggle.type = "button";
    toggle.className = "span-toggle";
    toggle.tabIndex = -1;
    toggle.textContent = hasChildren(row) ? (collapsed.has(span[col.id]) ? "▸" : "▾") : "";
    toggle.setAttribute("aria-label", hasChildren(row) ? "expand or collapse" : "");
    name.appendChild(toggle);
    const kindLabel = document.createElement("span");
    kindLabel.className = "span-kind";
    kindLabel.textContent = kind.replace("_", " ");
    name.appendChild(kindLabel);
    name.appendChild(document.createTextNode(" " + span[col.name]));
    element.appendChild(name);

    const time = document.createElement("span");
    time.className = "span-time";
    const bar = document.createElement("span");
    bar.className = "span-bar";
    bar.style.left = (100 * span[col.start_us] / total) + "%";
    bar.style.width = Math.max(0.2, 100 * span[col.duration_us] / total) + "%";
    time.appendChild(bar);
    element.appendChild(time);

    const subtree = hasChildren(row);
    [[formatDuration(span[col.duration_us]), subtree ? "subtree " + formatDuration(span[col.subtree_duration_us]) : ""],
     [span[col.tokens] ? String(span[col.tokens]) : "", subtree && span[col.subtree_tokens] ? "Σ " + span[col.subtree_tokens] : ""],
     [formatCost(span[col.cost_usd]), subtree && span[col.subtree_cost_usd] ? "Σ " + formatCost(span[col.subtree_cost_usd]) : ""],
     [failed ? "error" : open ? "waiting" : "", span[col.subtree_errors] && subtree ? "Σ " + span[col.subtree_errors] : ""]
    ].forEach(function ([own, sum]) {
      const cell = document.createElement("span");
      cell.className = "num";
      cell.textContent = own + (own && sum ? " · " : "") + sum;
      element.appendChild(cell);
    });
    return element;
  }

  // Only the rows in view (and a few either side) are in the DOM.
  function paint() {
    if (!trace) return;
    const first = Math.max(0, Math.floor(viewport.scrollTop / ROW_HEIGHT) - OVERSCAN);
    const shown = Math.ceil(viewport.clientHeight / ROW_HEIGHT) + 2 * OVERSCAN;
    const last = Math.min(visible.length, first + Math.min(shown, MAX_ROWS));
    const keep = new Set();
    for (let position = first; position < last; position++) {
      const row = visible[position];
      keep.add(row);
      if (!rendered.has(row)) {
        const element = rowElement(row, position);
        rendered.set(row, element);
        viewport.appendChild(element);
      }
    }
    rendered.forEach(function (element, row) {
      if (!keep.has(row)) { element.remove(); rendered.delete(row); }
    });
  }

  function repaintAll() {
    rendered.forEach(function (element) { element.remove(); });
    rendered.clear();
    paint();
  }

  function reveal(row) {
    // Expand its ancestors, show its kind, scroll it into view.
    let changed = false;
    for (let parent = value(row, "parent"); parent >= 0; parent = value(parent, "parent")) {
      if (collapsed.delete(value(parent, "id"))) changed = true;
    }
    const kind = trace.kinds[value(row, "kind")];
    if (hiddenKinds.delete(kind)) {
      changed = true;
      const box = root.querySelector('input[name="kind"][value="' + kind + '"]');
      if (box) box.checked = true;
    }
    if (changed) computeVisible();
    const position = visible.indexOf(row);
    if (position < 0) return;
    const top = position * ROW_HEIGHT;
    if (top < viewport.scrollTop || top + ROW_HEIGHT > viewport.scrollTop + viewport.clientHeight) {
      viewport.scrollTop = Math.max(0, top - viewport.clientHeight / 2);
    }
    paint();
  }

  function select(row, openDetail) {
    selected = row;
    reveal(row);
    repaintAll();
    if (openDetail) showDetail(row);
  }

  function showDetail(row) {
    const id = value(row, "id");  // an approval wait still open has -(its approval's id)
    const url = id < 0 ? root.dataset.openWait.replace(/0\/$/, (-id) + "/") : root.dataset.span.replace(/0\/$/, id + "/");
    detailPane.setAttribute("aria-busy", "true");
    fetch(url, {credentials: "same-origin", headers: {"HX-Request": "true"}}).then(function (response) {
      return response.text();
    }).then(function (html) {
      detailPane.innerHTML = html;
      detailPane.dataset.span = value(row, "id");
      detailPane.removeAttribute("aria-busy");
    });
  }

  function toggle(row) {
    if (!hasChildren(row)) return;
    const id = value(row, "id");
    if (!collapsed.delete(id)) collapsed.add(id);
    computeVisible();
  }

  function move(step) {
    if (!visible.length) return;
    const position = visible.indexOf(selected);
    const next = position < 0 ? 0 : Math.max(0, Math.min(visible.length - 1, position + step));
    select(visible[next], true);
  }

  function nextError(direction) {
    if (!trace) return;
    const spans = trace.spans;
    const count = spans.length;
    for (let offset = 1; offset <= count; offset++) {
      const row = ((selected < 0 ? (direction > 0 ? -1 : 0) : selected) + direction * offset + count * 2) % count;
      if (trace.statuses[spans[row][col.status]] === "error") {
        select(row, true);
        statusLine.textContent = "Error: " + spans[row][col.name];
        return;
      }
    }
    statusLine.textContent = "No errors in this trace.";
  }

  function search(query) {
    if (!query) { matches = new Set(); searchResult.textContent = ""; repaintAll(); return; }
    const url = root.dataset.search + "?q=" + encodeURIComponent(query);
    fetch(url, {credentials: "same-origin"}).then(function (response) { return response.json(); }).then(function (data) {
      matches = new Set(data.ids);
      const count = data.ids.length;
      searchResult.textContent = count ? count + (count === 1 ? " span matches" : " spans match") : "nothing matches";
      repaintAll();
      nextMatch();
    });
  }

  function nextMatch() {
    if (!matches.size) return;
    const spans = trace.spans;
    for (let offset = 1; offset <= spans.length; offset++) {
      const row = (Math.max(selected, -1) + offset) % spans.length;
      if (matches.has(spans[row][col.id])) { select(row, true); return; }
    }
  }

  viewport.addEventListener("scroll", function () { window.requestAnimationFrame(paint); }, {passive: true});
  viewport.addEventListener("click", function (event) {
    const element = event.target.closest(".span-row");
    if (!element) return;
    const row = parseInt(element.dataset.row, 10);
    if (event.target.closest(".span-toggle")) { toggle(row); return; }
    select(row, true);
  });
  root.querySelector(".trace-search").addEventListener("submit", function (event) {
    event.preventDefault();
    search(searchInput.value.trim());
  });
  root.querySelectorAll('input[name="kind"]').forEach(function (box) {
    box.addEventListener("change", function () {
      if (box.checked) hiddenKinds.delete(box.value); else hiddenKinds.add(box.value);
      if (trace) computeVisible();
    });
  });
  root.querySelectorAll("[data-trace-action]").forEach(function (button) {
    button.addEventListener("click", function () {
      const action = button.dataset.traceAction;
      if (action === "next-error") nextError(1);
      if (action === "previous-error") nextError(-1);
      if (action === "expand-all") { collapsed = new Set(); computeVisible(); }
      if (action === "collapse-all") {
        collapsed = new Set();
        trace.spans.forEach(function (span, row) { if (span[col.depth] >= 1 && hasChildren(row)) collapsed.add(span[col.id]); });
        computeVisible();
      }
    });
  });
  document.addEventListener("keydown", function (event) {
    if (!trace || event.ctrlKey || event.metaKey || event.altKey) return;
    const typing = event.target.closest("input, textarea, select");
    if (typing) {
      if (event.key === "Escape") event.target.blur();
      return;
    }
    if (event.key === "j") move(1);
    else if (event.key === "k") move(-1);
    else if (event.key === "Enter" && selected >= 0) toggle(selected);
    else if (event.key === "/") { event.preventDefault(); searchInput.focus(); searchInput.select(); }
    else if (event.key === "n") nextError(1);
    else if (event.key === "N") nextError(-1);
    else return;
    event.preventDefault();
  });

  // Live: while the run runs, the server says when new spans are stored; the skeleton is asked again
  // (at most once a second), with its totals as the server computes them.
  let reloadTimer = null;
  let lastReload = 0;
  function reloadSoon() {
    if (reloadTimer) return;
    const wait = Math.max(0, 1000 - (Date.now() - lastReload));
    reloadTimer = setTimeout(function () {
      reloadTimer = null;
      lastReload = Date.now();
      loadAll();
    }, wait);
  }
  function listen() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    let delay = 500;
    function open() {
      const socket = new WebSocket(scheme + location.host + root.dataset.liveTrace);
      socket.onopen = function () { delay = 500; };
      socket.onmessage = function () { reloadSoon(); };
      socket.onclose = function (event) {
        if (event.code >= 4400 && event.code < 4500) return;
        setTimeout(function () { open(); reloadSoon(); }, delay);
        delay = Math.min(delay * 2, 10000);
      };
    }
    open();
  }

  start();
  listen();
})();
