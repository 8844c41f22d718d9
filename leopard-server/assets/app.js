// Leopard web interface: progressive enhancement only. Every page works without this file;
// with it, the bell is live (the notification stream), selects submit their filter forms,
// tables are navigable with the keyboard, the theme can be switched, college-application
// cards can be dragged between stages, and calendar events show their colours.

const root = document.documentElement;

// ----- theme ---------------------------------------------------------------------------------
const storedTheme = localStorage.getItem("leopard-theme");
if (storedTheme === "light" || storedTheme === "dark") root.dataset.theme = storedTheme;
for (const button of document.querySelectorAll("[data-theme-toggle]")) {
  button.addEventListener("click", () => {
    const dark = root.dataset.theme === "dark" ||
      (!root.dataset.theme && matchMedia("(prefers-color-scheme: dark)").matches);
    root.dataset.theme = dark ? "light" : "dark";
    localStorage.setItem("leopard-theme", root.dataset.theme);
  });
}

// ----- filters: a select or checkbox marked data-autosubmit submits its form -----------------
for (const input of document.querySelectorAll("[data-autosubmit]")) {
  input.addEventListener("change", () => input.form && input.form.requestSubmit());
}
for (const button of document.querySelectorAll("[data-js-hide]")) button.hidden = true;

// ----- confirmations -------------------------------------------------------------------------
for (const form of document.querySelectorAll("form[data-confirm]")) {
  form.addEventListener("submit", (event) => {
    if (!confirm(form.dataset.confirm)) event.preventDefault();
  });
}

// ----- keyboard: "/" focuses the search; j/k or arrows move between rows; Enter opens --------
const search = document.querySelector("#global-search");
document.addEventListener("keydown", (event) => {
  const typing = /^(INPUT|SELECT|TEXTAREA)$/.test(document.activeElement?.tagName ?? "");
  if (event.key === "/" && !typing && search) {
    event.preventDefault();
    search.focus();
    return;
  }
  if (typing) return;
  const row = document.activeElement?.closest?.("tr[data-href]");
  const rows = [...document.querySelectorAll("tr[data-href]")];
  if (!rows.length) return;
  const index = row ? rows.indexOf(row) : -1;
  if (event.key === "j" || event.key === "ArrowDown") {
    event.preventDefault();
    rows[Math.min(index + 1, rows.length - 1)].focus();
  } else if (event.key === "k" || event.key === "ArrowUp") {
    event.preventDefault();
    rows[Math.max(index - 1, 0)].focus();
  } else if (event.key === "Enter" && row) {
    location.href = row.dataset.href;
  }
});
for (const row of document.querySelectorAll("tr[data-href]")) {
  row.addEventListener("dblclick", () => { location.href = row.dataset.href; });
}

// ----- the bell: live count and drop-down ----------------------------------------------------
const bell = document.querySelector("[data-bell]");
if (bell) {
  const count = bell.querySelector(".count");
  const menu = document.querySelector("#bell-menu");
  const setCount = (n) => {
    count.textContent = String(n);
    count.dataset.zero = String(n === 0);
    bell.setAttribute("aria-label", `Notifications: ${n} unread`);
  };
  const stream = new EventSource(bell.dataset.stream);
  stream.addEventListener("message", (event) => {
    let frame;
    try { frame = JSON.parse(event.data); } catch { return; }
    if (frame.type === "unread_count_update" && Number.isInteger(frame.unread_count)) {
      setCount(frame.unread_count);
    } else if (frame.type === "notification_message" && frame.notification && !frame.notification.read) {
      setCount(Number(count.textContent || 0) + 1);
      if (menu && !menu.hidden) loadMenu();
    }
  });
  const loadMenu = async () => {
    const response = await fetch("/notifications/menu/", { headers: { accept: "text/html" } });
    if (response.ok) menu.innerHTML = await response.text();
  };
  bell.addEventListener("click", async (event) => {
    if (!menu) return;
    event.preventDefault();
    menu.hidden = !menu.hidden;
    bell.setAttribute("aria-expanded", String(!menu.hidden));
    if (!menu.hidden) await loadMenu();
  });
  document.addEventListener("click", (event) => {
    if (menu && !menu.hidden && !menu.contains(event.target) && !bell.contains(event.target)) {
      menu.hidden = true;
      bell.setAttribute("aria-expanded", "false");
    }
  });
}

// ----- stage board: drag a card to another column --------------------------------------------
const board = document.querySelector("[data-board]");
if (board) {
  const csrf = board.dataset.csrf;
  let dragged = null;
  for (const card of board.querySelectorAll("[data-card]")) {
    card.addEventListener("dragstart", (event) => {
      dragged = card;
      event.dataTransfer.setData("text/plain", card.dataset.card);
      event.dataTransfer.effectAllowed = "move";
    });
  }
  for (const column of board.querySelectorAll("[data-stage]")) {
    column.addEventListener("dragover", (event) => {
      event.preventDefault();
      column.classList.add("drop-target");
    });
    column.addEventListener("dragleave", () => column.classList.remove("drop-target"));
    column.addEventListener("drop", async (event) => {
      event.preventDefault();
      column.classList.remove("drop-target");
      const id = event.dataTransfer.getData("text/plain") || dragged?.dataset.card;
      const card = board.querySelector(`[data-card="${CSS.escape(id)}"]`);
      if (!card || card.closest("[data-stage]") === column) return;
      const body = new URLSearchParams({ csrf, stage_id: column.dataset.stage, board: "1" });
      const response = await fetch(`/college-applications/${encodeURIComponent(id)}/stage/`, {
        method: "POST",
        body,
        headers: { accept: "application/json" },
      });
      if (response.ok) {
        column.querySelector("ol").append(card);
        // The card's own move form (the no-script fallback) now names its new stage.
        const select = card.querySelector("select[name=stage_id]");
        if (select) select.value = column.dataset.stage;
        for (const col of board.querySelectorAll("[data-stage]")) {
          col.querySelector("[data-count]").textContent = String(col.querySelectorAll("[data-card]").length);
        }
      } else {
        // The move handler answers a refusal as plain text; other pages (CSRF) are HTML.
        const plain = (response.headers.get("content-type") || "").startsWith("text/plain");
        const text = plain ? await response.text() : "";
        alert(text || `The move was refused (${response.status}).`);
      }
    });
  }
}

// ----- calendar: each event's own colour (data-color, "#rrggbb") -----------------------------
for (const element of document.querySelectorAll("[data-color]")) {
  const color = element.dataset.color;
  if (/^#[0-9a-fA-F]{6}$/.test(color)) element.style.setProperty("--ev", color);
}
