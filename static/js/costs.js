// The Costs dashboard's chart: spend over time, stacked by the chosen grouping, drawn with the vendored
// Chart.js from the JSON the page carries (the table under it holds the same numbers). Drawn again when
// the panels refresh.
(function () {
  "use strict";

  const COLORS = ["#2563eb", "#16a34a", "#d97706", "#9333ea", "#dc2626", "#0891b2", "#4b5563", "#be185d", "#94a3b8"];
  let chart = null;

  function draw() {
    const canvas = document.getElementById("cost-chart");
    const source = canvas && document.getElementById(canvas.dataset.series);
    if (!canvas || !source || !window.Chart) return;
    const data = JSON.parse(source.textContent);
    if (chart) chart.destroy();
    chart = new window.Chart(canvas, {
      type: "bar",
      data: {
        labels: data.buckets,
        datasets: data.datasets.map(function (dataset, i) {
          return { label: dataset.label, data: dataset.values, backgroundColor: COLORS[i % COLORS.length], stack: "spend" };
        })
      },
      options: {
        animation: false,
        maintainAspectRatio: false,
        scales: { x: { stacked: true }, y: { stacked: true, ticks: { callback: function (v) { return "$" + v; } } } },
        plugins: { tooltip: { callbacks: { label: function (item) { return item.dataset.label + ": $" + item.parsed.y.toFixed(4); } } } }
      }
    });
  }

  // Live: the server says when the tenant's spend changed (at most about once a second); the panels are
  // fetched again (their hx-trigger listens for "spend-changed"), so the page and the update render alike.
  function spendSocket(delay) {
    const live = document.getElementById("cost-live");
    if (!live || !live.dataset.liveCosts) return;
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const socket = new WebSocket(scheme + location.host + live.dataset.liveCosts);
    socket.onopen = function () { delay = 500; live.textContent = "Updates as runs spend."; };
    socket.onmessage = function () { document.body.dispatchEvent(new CustomEvent("spend-changed")); };
    socket.onclose = function (event) {
      if (event.code >= 4400 && event.code < 4500) return;  // not found or not allowed: do not retry
      live.textContent = "Live updates paused; the page refreshes every minute.";
      setTimeout(function () { spendSocket(Math.min(delay * 2, 10000)); }, delay);
    };
  }

  document.addEventListener("DOMContentLoaded", function () { draw(); spendSocket(500); });
  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.target && event.target.id === "cost-panels") draw();
  });
  document.body && document.body.addEventListener("htmx:afterSettle", function () { if (!chart) draw(); });
})();
