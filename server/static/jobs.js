// The jobs page, live: every event of the organisation's jobs refreshes its row (a new job reloads the page).
// A file of its own, not inline: the dashboard's Content-Security-Policy runs scripts from the server only.
const table = document.getElementById("jobs");
const stream = new EventSource("/api/v1/events");
function refresh(event) {
  const data = JSON.parse(event.data);
  const row = document.getElementById("job-" + data.job);
  if (!row) { location.reload(); return; }
  fetch("/dashboard/rows/" + data.job).then(r => r.json()).then(job => {
    const status = row.querySelector(".status");
    status.textContent = job.status; status.className = "status " + job.status;
    row.querySelector(".cost").textContent = job.cost;
  });
}
for (const name of JSON.parse(table.dataset.events)) { stream.addEventListener(name, refresh); }
