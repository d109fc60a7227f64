// The console's small behaviours. Everything works without this file; it adds charts,
// submit-on-change for filters and "select all" for bulk approval. No inline script is
// allowed by the page's Content-Security-Policy, so data arrives as JSON in the page.
'use strict';

document.addEventListener('change', (event) => {
  const el = event.target;
  if (el.matches('[data-autosubmit]') && el.form) {
    if (window.htmx && el.form.hasAttribute('hx-get')) window.htmx.trigger(el.form, 'submit');
    else el.form.requestSubmit();
  }
  if (el.matches('[data-select-all]')) {
    const form = el.form;
    for (const box of form.querySelectorAll('input[type=checkbox][name="' + el.dataset.selectAll + '"]')) {
      box.checked = el.checked;
    }
  }
});

// A refused in-place action (409 already reviewed, 403…) says why above the page's content.
document.addEventListener('htmx:responseError', (event) => {
  const xhr = event.detail.xhr;
  let reason = xhr.statusText;
  try { reason = JSON.parse(xhr.responseText).reason || reason; } catch (e) {
    const found = /<p class="error"[^>]*>([^<]*)</.exec(xhr.responseText);
    if (found) reason = found[1];
  }
  const note = document.createElement('p');
  note.className = 'error';
  note.setAttribute('role', 'alert');
  note.textContent = reason;
  document.querySelector('main').prepend(note);
});

const PALETTE = ['#2f7d4f', '#d08c2c', '#b5473a', '#7a6aa8', '#4f7fb0', '#bfbfbf',
  '#3c9d9b', '#c46fa5', '#8a8a3a', '#5d5d5d'];
const OUTCOME_COLOURS = { met: '#2f7d4f', nobody_home: '#d08c2c', refused: '#b5473a',
  vacant: '#7a6aa8', moved_away: '#4f7fb0', not_visited: '#d9d9d9' };

function drawCharts() {
  const holder = document.getElementById('chart-data');
  if (!holder || !window.Chart) return;
  const data = JSON.parse(holder.textContent);
  const Chart = window.Chart;
  const coverage = document.getElementById('chart-coverage');
  if (coverage && data.coverage) {
    new Chart(coverage, {
      type: 'bar',
      data: {
        labels: data.coverage.labels,
        datasets: data.coverage.series.map((s) => ({
          label: s.label, data: s.data, backgroundColor: OUTCOME_COLOURS[s.key] || '#999',
        })),
      },
      options: { indexAxis: 'y', responsive: true, maintainAspectRatio: false, animation: false,
        scales: { x: { stacked: true }, y: { stacked: true } } },
    });
  }
  const workers = document.getElementById('chart-workers');
  if (workers && data.workers) {
    new Chart(workers, {
      type: 'line',
      data: {
        labels: data.workers.labels,
        datasets: data.workers.series.map((s, i) => ({
          label: s.label, data: s.data, borderColor: PALETTE[i % PALETTE.length],
          backgroundColor: PALETTE[i % PALETTE.length], tension: 0.2,
        })),
      },
      options: { responsive: true, maintainAspectRatio: false, animation: false,
        scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
    });
  }
  const needs = document.getElementById('chart-needs');
  if (needs && data.needs) {
    new Chart(needs, {
      type: 'bar',
      data: { labels: data.needs.labels,
        datasets: [{ data: data.needs.data, backgroundColor: PALETTE }] },
      options: { responsive: true, maintainAspectRatio: false, animation: false,
        plugins: { legend: { display: false } },
        scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
    });
  }
  document.body.dataset.charts = 'drawn';
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', drawCharts);
else drawCharts();
