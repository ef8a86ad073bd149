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

  document.addEventListener("DOMContentLoaded", draw);
  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.target && event.target.id === "cost-panels") draw();
  });
  document.body && document.body.addEventListener("htmx:afterSettle", function () { if (!chart) draw(); });
})();
