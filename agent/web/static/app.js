// shopagent chat page: no framework, no build step, no network but this app's own /api/v1/chat endpoints.
// Product images are the catalog's image_url (a placeholder replaces missing or broken ones).
"use strict";

(function () {
  const API = "/api/v1/chat";
  const KEY = {
    user: "shopagent.user", session: "shopagent.session", lang: "shopagent.lang", turns: "shopagent.turns.",
    started: "shopagent.started", // the session id that has had a message (a fresh one has no history to ask for)
  };
  const LIST_INTENTS = new Set(["search", "refine", "similar"]);
  const MAX_STORED_TURNS = 30;
  const MAX_RETRY_AFTER_S = 15;
  // A turn on a slow local LLM can take a while; past this, say so (tests shorten it).
  const turnTimeoutMs = () => Number(window.SHOPAGENT_TURN_TIMEOUT_MS) || 180000;

  // ------------------------------------------------------------------ UI strings (en / es)
  const STRINGS = {
    en: {
      skip: "Skip to the message box",
      language: "Language",
      newConversation: "New conversation",
      apiDocs: "API docs",
      conversation: "Conversation",
      message: "Message",
      placeholder: "What are you looking for?",
      send: "Send",
      hint: "Enter sends, Shift+Enter adds a line.",
      you: "You",
      assistant: "Assistant",
      welcomeTitle: "Hi! What are you shopping for?",
      welcomeText: "Describe what you need, then refine the results, compare them or ask for similar ones.",
      examples: ["tresemme shampoo", "leather belts under $30", "water bottle for kids without straw"],
      examplesLabel: "Try",
      steps: ["Understanding", "Searching", "Answering"],
      stepStatus: "{step}…",
      priceUnknown: "price unknown",
      similarity: "similarity {v}",
      why: "Why it matched",
      weaker: "weaker match",
      cardAsk: "Ask for details of product {n}",
      quickLabel: "Suggestions",
      quick: { cheaper: "cheaper", similar: "more like the first", compare: "compare 1 and 2", details: "details of #2" },
      detailsOf: "details of #{n}",
      good: "Good answer",
      bad: "Bad answer",
      thanks: "Thanks for the feedback!",
      thanksNotRecorded: "Thanks! (this server doesn't record feedback)",
      feedbackFailed: "Couldn't send the feedback.",
      notices: {
        served_by_chroma: "Served by the backup search",
        memory_unavailable: "Memory unavailable: this chat may be lost on reload",
        llm_unavailable: "Answered by the built-in assistant",
        weak_matches: "Weaker matches",
      },
      errors: {
        network: "Can't reach the shop assistant. Check the connection and try again.",
        unavailable: "The shop assistant is unavailable right now. Please try again in a moment.",
        server: "Something went wrong on our side ({status}). Please try again.",
        stream: "The answer was interrupted. Please try again.",
        timeout: "The answer is taking too long. Please try again.",
        busyWait: "Still finishing your previous message… trying again in {s} s.",
        busyAgain: "Your previous message is still being answered. Please wait a moment and send again.",
        forbidden: "This conversation can't be continued here. Start a new conversation.",
        invalid: "That message couldn't be sent: {detail}",
        history: "Couldn't load the conversation so far.",
      },
      retry: "Try again",
    },
    es: {
      skip: "Ir al cuadro de mensaje",
      language: "Idioma",
      newConversation: "Nueva conversación",
      apiDocs: "Documentación de la API",
      conversation: "Conversación",
      message: "Mensaje",
      placeholder: "¿Qué estás buscando?",
      send: "Enviar",
      hint: "Intro envía, Mayús+Intro añade una línea.",
      you: "Tú",
      assistant: "Asistente",
      welcomeTitle: "¡Hola! ¿Qué quieres comprar?",
      welcomeText: "Describe lo que necesitas y luego afina los resultados, compáralos o pide parecidos.",
      examples: ["champú tresemme", "cinturones de cuero por menos de 30 dólares", "botella de agua para niños sin pajita"],
      examplesLabel: "Prueba",
      steps: ["Entendiendo", "Buscando", "Respondiendo"],
      stepStatus: "{step}…",
      priceUnknown: "precio desconocido",
      similarity: "similitud {v}",
      why: "Por qué coincide",
      weaker: "coincidencia débil",
      cardAsk: "Pedir detalles del producto {n}",
      quickLabel: "Sugerencias",
      quick: { cheaper: "más barato", similar: "más como el primero", compare: "compara el 1 y el 2", details: "detalles del 2" },
      detailsOf: "detalles del {n}",
      good: "Buena respuesta",
      bad: "Mala respuesta",
      thanks: "¡Gracias por tu opinión!",
      thanksNotRecorded: "¡Gracias! (este servidor no registra opiniones)",
      feedbackFailed: "No se pudo enviar tu opinión.",
      notices: {
        served_by_chroma: "Servido por la búsqueda de respaldo",
        memory_unavailable: "Memoria no disponible: esta conversación puede perderse al recargar",
        llm_unavailable: "Respondido por el asistente integrado",
        weak_matches: "Coincidencias más débiles",
      },
      errors: {
        network: "No se puede contactar con el asistente. Revisa la conexión e inténtalo de nuevo.",
        unavailable: "El asistente no está disponible ahora mismo. Inténtalo de nuevo en un momento.",
        server: "Algo ha fallado por nuestra parte ({status}). Inténtalo de nuevo.",
        stream: "La respuesta se interrumpió. Inténtalo de nuevo.",
        timeout: "La respuesta está tardando demasiado. Inténtalo de nuevo.",
        busyWait: "Terminando tu mensaje anterior… lo intento de nuevo en {s} s.",
        busyAgain: "Tu mensaje anterior aún se está respondiendo. Espera un momento y vuelve a enviarlo.",
        forbidden: "Esta conversación no se puede continuar aquí. Empieza una nueva conversación.",
        invalid: "No se pudo enviar el mensaje: {detail}",
        history: "No se pudo cargar la conversación.",
      },
      retry: "Reintentar",
    },
  };

  // ------------------------------------------------------------------ small helpers
  const $ = (sel) => document.querySelector(sel);
  const els = {};
  const state = {
    lang: "en",
    userId: "",
    sessionId: "",
    busy: false,
    transcript: [], // {role, content, turn?}; turn = the API's answer fields (products, run_id, intent, ...)
  };

  function t(path, vars) {
    let value = path.split(".").reduce((o, k) => (o == null ? o : o[k]), STRINGS[state.lang]);
    if (value == null) value = path.split(".").reduce((o, k) => (o == null ? o : o[k]), STRINGS.en);
    if (typeof value === "string" && vars) {
      value = value.replace(/\{(\w+)\}/g, (m, k) => (k in vars ? String(vars[k]) : m));
    }
    return value;
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v == null || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : String(v));
    }
    for (const child of children.flat()) {
      if (child == null || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function randomId(prefix) {
    const bytes = new Uint8Array(12);
    crypto.getRandomValues(bytes); // works on plain http too (randomUUID needs a secure context)
    return prefix + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function storageGet(key) {
    try { return localStorage.getItem(key); } catch (e) { return null; }
  }
  function storageSet(key, value) {
    try {
      if (value == null) localStorage.removeItem(key);
      else localStorage.setItem(key, value);
    } catch (e) { /* private mode or full: the page still works, it just forgets on reload */ }
  }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  function formatPrice(price) {
    if (typeof price !== "number" || !isFinite(price)) return t("priceUnknown");
    const locale = state.lang === "es" ? "es-ES" : "en-US";
    return new Intl.NumberFormat(locale, { style: "currency", currency: "USD" }).format(price);
  }

  function safeImageUrl(url) {
    if (typeof url !== "string" || !url.trim()) return null;
    try {
      const u = new URL(url, location.href);
      return u.protocol === "https:" || u.protocol === "http:" ? u.href : null;
    } catch (e) {
      return null;
    }
  }

  // ------------------------------------------------------------------ server-sent events over fetch
  // A minimal parser of the text/event-stream format: `event:` and `data:` fields, blank line ends an event,
  // `:` lines are comments (sse-starlette's pings); CRLF, CR or LF line ends, split anywhere across chunks.
  function sseParser(onEvent) {
    let buffer = "";
    let eventName = "";
    let data = [];
    function line(text) {
      if (text === "") {
        if (data.length) onEvent(eventName || "message", data.join("\n"));
        eventName = "";
        data = [];
        return;
      }
      if (text.startsWith(":")) return;
      const colon = text.indexOf(":");
      const field = colon < 0 ? text : text.slice(0, colon);
      let value = colon < 0 ? "" : text.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") eventName = value;
      else if (field === "data") data.push(value);
    }
    return function feed(chunk, done) {
      buffer += chunk;
      const re = /\r\n|\r|\n/g;
      let start = 0;
      let m;
      while ((m = re.exec(buffer))) {
        if (m[0] === "\r" && m.index === buffer.length - 1 && !done) break; // maybe the \r of a split \r\n
        line(buffer.slice(start, m.index));
        start = re.lastIndex;
      }
      buffer = buffer.slice(start);
      if (done) {
        if (buffer) line(buffer);
        line("");
        buffer = "";
      }
    };
  }

  async function readStream(response, onEvent) {
    const feed = sseParser(onEvent);
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      feed(decoder.decode(value, { stream: true }), false);
    }
    feed(decoder.decode(), true);
  }

  async function errorDetail(response) {
    try {
      const body = await response.json();
      const d = body && body.detail;
      if (typeof d === "string") return d;
      if (Array.isArray(d) && d.length) return d.map((x) => (x && x.msg) || "").filter(Boolean).join("; ");
    } catch (e) { /* not JSON */ }
    return "";
  }

  // ------------------------------------------------------------------ stored turns (cards survive a reload)
  // The history endpoint returns the messages' text; the cards, run ids and notices of the turns this browser
  // saw are kept per session in localStorage and matched back by the answer's text (in order).
  function storedTurns() {
    try { return JSON.parse(storageGet(KEY.turns + state.sessionId) || "[]") || []; } catch (e) { return []; }
  }
  function storeTurn(turn) {
    const turns = storedTurns().concat([turn]).slice(-MAX_STORED_TURNS);
    storageSet(KEY.turns + state.sessionId, JSON.stringify(turns));
  }
  function updateStoredTurn(runId, patch) {
    const turns = storedTurns();
    const found = turns.find((x) => x.run_id === runId);
    if (!found) return;
    Object.assign(found, patch);
    storageSet(KEY.turns + state.sessionId, JSON.stringify(turns));
  }
  function turnFields(answer) {
    return {
      response: answer.response || "",
      products: Array.isArray(answer.products) ? answer.products : [],
      run_id: answer.run_id || null,
      intent: answer.intent || null,
      brain: answer.brain || null,
      strategy: answer.strategy || null,
      backend: answer.backend || null,
      fallback_reason: answer.fallback_reason || null,
      llm_fallback_reason: answer.llm_fallback_reason || null,
      weak_matches: answer.weak_matches === true,
      notices: Array.isArray(answer.notices) ? answer.notices : null,
      rating: null,
    };
  }

  // ------------------------------------------------------------------ rendering
  function noticeCodes(turn) {
    const codes = [];
    if (Array.isArray(turn.notices)) {
      for (const c of turn.notices) if (typeof c === "string" && !codes.includes(c)) codes.push(c);
    } else {
      // Before the API sends `notices`, derive them from the fields it has.
      if (turn.backend === "chroma" && turn.fallback_reason) codes.push("served_by_chroma");
      if (turn.llm_fallback_reason) codes.push("llm_unavailable");
    }
    if (turn.weak_matches && !codes.includes("weak_matches")) codes.push("weak_matches");
    return codes;
  }

  function noticeText(code) {
    const known = STRINGS[state.lang].notices[code] || STRINGS.en.notices[code];
    return known || code.replace(/_/g, " ");
  }

  function isWeak(turn) {
    return turn.weak_matches === true || (Array.isArray(turn.notices) && turn.notices.includes("weak_matches"));
  }

  function isListTurn(turn) {
    if (!turn || !turn.products || !turn.products.length) return false;
    return turn.intent ? LIST_INTENTS.has(turn.intent) : turn.products.length > 1;
  }

  function answerText(turn, content) {
    // With cards on screen, the numbered product lines of a rules-brain list answer say the same again.
    if (!turn || !isListTurn(turn) || turn.brain === "llm") return content;
    const kept = content.split("\n").filter((line) => !/^\s*\d+\.\s/.test(line));
    return kept.join("\n").trim() || content;
  }

  function placeholder() {
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 48 48");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    const bag = document.createElementNS(ns, "path");
    bag.setAttribute("d", "M12 17h24l-2 22H14z M19 17v-3a5 5 0 0 1 10 0v3");
    svg.append(bag);
    return el("div", { class: "thumb thumb-placeholder" }, svg);
  }

  function thumb(product) {
    const src = safeImageUrl(product.image_url);
    if (!src) return placeholder();
    const img = el("img", { src, alt: "", loading: "lazy", decoding: "async", referrerpolicy: "no-referrer" });
    const box = el("div", { class: "thumb" }, img);
    img.addEventListener("error", () => box.replaceWith(placeholder()), { once: true });
    return box;
  }

  function similarityBar(sim) {
    if (typeof sim !== "number" || !isFinite(sim)) return null;
    const v = Math.max(0, Math.min(1, sim));
    const fill = el("span", { class: "sim-fill" });
    fill.style.width = Math.round(v * 100) + "%";
    return el("div", { class: "sim" },
      el("span", { class: "sim-bar", "aria-hidden": "true" }, fill),
      el("span", { class: "sim-value", text: t("similarity", { v: sim.toFixed(2) }) }));
  }

  function card(product, index, opts) {
    const n = index + 1;
    const name = product.name || product.product_id || "?";
    let reason = typeof product.reason === "string" ? product.reason.trim() : "";
    if (typeof product.similarity === "number") {
      // The similarity bar shows it; the agent's reason ends with the same figure in words.
      reason = reason.replace(/(^|[;,]\s*)(similarity|similitud)\s+\d+(\.\d+)?\s*$/i, "").trim();
    }
    const title = opts.clickable
      ? el("button", { type: "button", class: "card-title-button", "data-n": n }, name)
      : name;
    const article = el("article", { class: "card" + (opts.weak ? " card-weak" : "") + (opts.clickable ? " card-clickable" : ""), "data-n": n },
      opts.noRank ? null : el("span", { class: "rank", text: String(n) }),
      thumb(product),
      el("div", { class: "card-body" },
        el("h2", { class: "card-title" }, title),
        product.brand ? el("p", { class: "card-brand", text: product.brand }) : null,
        el("p", { class: "card-price" + (typeof product.price === "number" ? "" : " card-price-unknown"), text: formatPrice(product.price) }),
        reason ? el("p", { class: "card-why" }, el("span", { class: "visually-hidden", text: t("why") + ": " }), reason) : null,
        opts.weak ? el("p", { class: "card-weak-label", text: t("weaker") }) : null,
        similarityBar(product.similarity)));
    if (opts.clickable) {
      article.querySelector(".card-title-button").title = t("cardAsk", { n });
      // A click anywhere on the card asks for its details (the title button is the keyboard way in).
      article.addEventListener("click", (ev) => {
        if (state.busy || !article.classList.contains("card-clickable")) return;
        if (ev.target.closest("a")) return;
        send(t("detailsOf", { n }));
      });
    }
    return article;
  }

  const ICONS = {
    up: "M14 9V5a3 3 0 0 0-3-3l-4 9v11h11.28a2 2 0 0 0 2-1.7l1.38-9a2 2 0 0 0-2-2.3zM7 22H4a2 2 0 0 1-2-2v-7a2 2 0 0 1 2-2h3",
    down: "M10 15v4a3 3 0 0 0 3 3l4-9V2H5.72a2 2 0 0 0-2 1.7l-1.38 9a2 2 0 0 0 2 2.3zm7-13h2.67A2.31 2.31 0 0 1 22 4v7a2.31 2.31 0 0 1-2.33 2H17",
  };
  function icon(name) {
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    const path = document.createElementNS(ns, "path");
    path.setAttribute("d", ICONS[name]);
    svg.append(path);
    return svg;
  }

  function feedbackBar(turn) {
    if (!turn.run_id) return null;
    const status = el("span", { class: "feedback-status", role: "status" });
    const up = el("button", { type: "button", class: "icon-button", "aria-label": t("good"), title: t("good"), "aria-pressed": String(turn.rating === 1) }, icon("up"));
    const down = el("button", { type: "button", class: "icon-button", "aria-label": t("bad"), title: t("bad"), "aria-pressed": String(turn.rating === 0) }, icon("down"));
    async function rate(score) {
      up.setAttribute("aria-pressed", String(score === 1));
      down.setAttribute("aria-pressed", String(score === 0));
      turn.rating = score;
      updateStoredTurn(turn.run_id, { rating: score });
      try {
        const r = await fetch(API + "/feedback", {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ run_id: turn.run_id, score }),
        });
        let recorded = false;
        if (r.ok) {
          try { recorded = (await r.json()).recorded === true; } catch (e) { /* keep false */ }
        }
        status.textContent = !r.ok ? t("feedbackFailed") : recorded ? t("thanks") : t("thanksNotRecorded");
      } catch (e) {
        status.textContent = t("feedbackFailed");
      }
    }
    up.addEventListener("click", () => rate(1));
    down.addEventListener("click", () => rate(0));
    return el("div", { class: "feedback" }, up, down, status);
  }

  function userMessage(content) {
    return el("div", { class: "msg msg-user" },
      el("span", { class: "visually-hidden", text: t("you") + ": " }),
      el("div", { class: "bubble", text: content }));
  }

  // The list turn in force before transcript position `before` (all of it when -1).
  function currentListTurn(before) {
    const upTo = before < 0 ? state.transcript.length : before;
    for (let i = upTo - 1; i >= 0; i--) {
      const e = state.transcript[i];
      if (e.role === "assistant" && isListTurn(e.turn)) return e.turn;
    }
    return null;
  }

  function assistantMessage(content, turn, entry) {
    const wrap = el("div", { class: "msg msg-assistant" + (turn && isWeak(turn) ? " msg-weak" : "") });
    wrap.append(el("span", { class: "visually-hidden", text: t("assistant") + ": " }));
    wrap.append(el("div", { class: "bubble", text: answerText(turn, content) }));
    if (!turn) return wrap;
    const codes = noticeCodes(turn);
    if (codes.length) {
      wrap.append(el("ul", { class: "notices" }, codes.map((c) => el("li", { class: "notice notice-" + c.replace(/[^\w-]/g, ""), text: noticeText(c) }))));
    }
    if (turn.products.length) {
      const weak = isWeak(turn);
      // Numbers are positions in the list on screen ("the second one"): a details or comparison answer
      // numbers its products by that list, not by their order in the answer.
      const list = isListTurn(turn) ? null : currentListTurn(state.transcript.indexOf(entry));
      wrap.append(el("div", { class: "cards" }, turn.products.map((p, i) => {
        const n = list ? list.products.findIndex((q) => q.product_id === p.product_id) + 1 : i + 1;
        return card(p, n - 1, { clickable: false, weak, noRank: n === 0 });
      })));
    }
    const fb = feedbackBar(turn);
    if (fb) wrap.append(fb);
    return wrap;
  }

  function quickReplies(listTurn) {
    const q = STRINGS[state.lang].quick;
    const options = [q.cheaper, q.similar];
    if (listTurn.products.length >= 2) options.push(q.compare, q.details);
    return el("div", { class: "quick", role: "group", "aria-label": t("quickLabel") },
      options.map((text) => el("button", { type: "button", class: "chip", onclick: () => send(text) }, text)));
  }

  function makeCardsClickable(msgEl, turn) {
    // Cards of the list on screen (the one "the second one" refers to) ask for their details when clicked.
    const weak = isWeak(turn);
    const cards = msgEl.querySelector(".cards");
    if (!cards) return;
    cards.replaceWith(el("div", { class: "cards" }, turn.products.map((p, i) => card(p, i, { clickable: true, weak }))));
  }

  function welcome() {
    return el("div", { class: "welcome" },
      el("h2", { text: t("welcomeTitle") }),
      el("p", { text: t("welcomeText") }),
      el("div", { class: "quick", role: "group", "aria-label": t("examplesLabel") },
        t("examples").map((text) => el("button", { type: "button", class: "chip", onclick: () => send(text) }, text))));
  }

  // Rebuild the log from the transcript (after loading history or switching language).
  function renderAll() {
    els.log.replaceChildren();
    if (!state.transcript.length) {
      els.log.append(welcome());
      return;
    }
    for (const entry of state.transcript) {
      entry.el = entry.role === "user" ? userMessage(entry.content) : assistantMessage(entry.content, entry.turn, entry);
      els.log.append(entry.el);
    }
    refreshListAffordances();
  }

  function refreshListAffordances() {
    els.log.querySelectorAll(".quick-under").forEach((n) => n.remove());
    els.log.querySelectorAll(".card-clickable").forEach((n) => {
      const title = n.querySelector(".card-title-button");
      if (title) title.replaceWith(document.createTextNode(title.textContent));
      n.classList.remove("card-clickable");
    });
    const assistants = state.transcript.filter((e) => e.role === "assistant");
    const listEntry = [...assistants].reverse().find((e) => isListTurn(e.turn));
    if (!listEntry) return;
    makeCardsClickable(listEntry.el, listEntry.turn);
    const last = assistants[assistants.length - 1];
    const quick = quickReplies(listEntry.turn);
    quick.classList.add("quick-under");
    last.el.append(quick);
  }

  function scrollToEnd() {
    const last = els.log.lastElementChild;
    if (last) last.scrollIntoView({ block: "end", behavior: "auto" });
  }

  function applyStaticStrings() {
    document.documentElement.lang = state.lang;
    document.querySelectorAll("[data-i18n]").forEach((n) => { n.textContent = t(n.dataset.i18n); });
    document.querySelectorAll("[data-i18n-placeholder]").forEach((n) => { n.placeholder = t(n.dataset.i18nPlaceholder); });
    document.querySelectorAll("[data-i18n-aria-label]").forEach((n) => n.setAttribute("aria-label", t(n.dataset.i18nAriaLabel)));
    els.lang.value = state.lang;
  }

  function showBanner(text, action) {
    els.banner.replaceChildren(el("span", { text }));
    if (action) els.banner.append(" ", el("button", { type: "button", class: "link-button", onclick: action.run }, action.label));
    els.banner.hidden = false;
  }
  function hideBanner() {
    els.banner.hidden = true;
    els.banner.replaceChildren();
  }

  // ------------------------------------------------------------------ a turn in progress
  function pendingMessage() {
    const steps = el("ol", { class: "steps" }, t("steps").map((s) => el("li", { text: s })));
    const node = el("div", { class: "msg msg-assistant msg-pending", "aria-busy": "true" },
      el("div", { class: "bubble" }, steps));
    setStep(node, 0);
    return node;
  }

  function setStep(node, index) {
    const items = node.querySelectorAll(".steps li");
    items.forEach((li, i) => {
      li.className = i < index ? "done" : i === index ? "active" : "";
      if (i === index) li.setAttribute("aria-current", "step");
      else li.removeAttribute("aria-current");
    });
    const label = t("stepStatus", { step: t("steps")[Math.min(index, items.length - 1)] });
    if (els.progress.textContent !== label) els.progress.textContent = label;
  }

  function stepOfNode(nodeName) {
    if (nodeName === "understand") return 1;
    if (nodeName === "respond") return 3;
    return 2; // search, details, compare, similar, chat, llm_agent: the answer is being written next
  }

  function errorMessage(text, retry) {
    const node = el("div", { class: "msg msg-error", role: "alert" },
      el("div", { class: "bubble" }, el("span", { text })));
    if (retry) node.querySelector(".bubble").append(" ", el("button", { type: "button", class: "link-button", onclick: retry }, t("retry")));
    return node;
  }

  function setBusy(busy) {
    state.busy = busy;
    els.send.disabled = busy;
    els.log.setAttribute("aria-busy", String(busy));
    els.log.classList.toggle("is-busy", busy);
    if (!busy) els.progress.textContent = "";
  }

  async function send(raw) {
    const text = (raw || "").trim();
    if (!text || state.busy) return;
    if (!state.transcript.length) els.log.replaceChildren(); // drop the welcome panel
    els.log.querySelectorAll(".msg-error").forEach((n) => n.remove());
    storageSet(KEY.started, state.sessionId);
    const entry = { role: "user", content: text };
    entry.el = userMessage(text);
    state.transcript.push(entry);
    els.log.append(entry.el);
    await runTurn(text);
  }

  async function runTurn(text) {
    setBusy(true);
    const pending = pendingMessage();
    els.log.append(pending);
    scrollToEnd();
    let outcome;
    try {
      outcome = await streamTurn(text, pending);
    } catch (e) {
      outcome = { error: t("errors.stream"), retry: true };
    }
    pending.remove();
    setBusy(false);
    if (state.rerender) {
      state.rerender = false;
      renderAll();
    }
    if (outcome.answer) {
      addAnswer(outcome.answer);
    } else {
      const retry = outcome.retry ? () => { const n = els.log.querySelector(".msg-error"); if (n) n.remove(); runTurn(text); } : null;
      els.log.append(errorMessage(outcome.error, retry));
    }
    scrollToEnd();
    els.input.focus();
  }

  async function streamTurn(text, pending) {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), turnTimeoutMs());
    try {
      return await streamAttempts(text, pending, controller.signal);
    } catch (e) {
      if (controller.signal.aborted) return { error: t("errors.timeout"), retry: true };
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  async function streamAttempts(text, pending, signal) {
    const body = JSON.stringify({ user_id: state.userId, message: text, session_id: state.sessionId });
    for (let attempt = 0; ; attempt++) {
      let response;
      try {
        response = await fetch(API + "/message/stream", {
          method: "POST",
          headers: { "content-type": "application/json", accept: "text/event-stream" },
          body,
          signal,
        });
      } catch (e) {
        if (signal.aborted) throw e;
        return { error: t("errors.network"), retry: true };
      }
      if (response.status === 409) {
        if (attempt > 0) return { error: t("errors.busyAgain"), retry: true };
        const after = parseFloat(response.headers.get("retry-after") || "");
        const seconds = Math.min(isFinite(after) && after >= 0 ? after : 2, MAX_RETRY_AFTER_S);
        const note = el("p", { class: "pending-note", text: t("errors.busyWait", { s: Math.ceil(seconds) }) });
        pending.querySelector(".bubble").append(note);
        await sleep(seconds * 1000);
        note.remove();
        continue;
      }
      if (!response.ok) {
        const detail = await errorDetail(response);
        if (response.status === 422) return { error: t("errors.invalid", { detail: detail || "422" }), retry: false };
        if (response.status === 403) return { error: t("errors.forbidden"), retry: false };
        if (response.status === 503) return { error: t("errors.unavailable"), retry: true };
        return { error: t("errors.server", { status: response.status }), retry: true };
      }
      let answer = null;
      let failed = null;
      await readStream(response, (event, data) => {
        let payload = null;
        try { payload = JSON.parse(data); } catch (e) { return; }
        if (event === "progress" && payload && payload.node) setStep(pending, stepOfNode(payload.node));
        else if (event === "final") answer = payload;
        else if (event === "error") failed = (payload && payload.detail) || "error";
      });
      if (answer && typeof answer.response === "string") return { answer };
      return { error: failed ? t("errors.server", { status: failed }) : t("errors.stream"), retry: true };
    }
  }

  function addAnswer(answer) {
    if (answer.session_id && answer.session_id !== state.sessionId) {
      state.sessionId = answer.session_id;
      storageSet(KEY.session, state.sessionId);
    }
    const turn = turnFields(answer);
    storeTurn(turn);
    const entry = { role: "assistant", content: turn.response, turn };
    state.transcript.push(entry);
    entry.el = assistantMessage(turn.response, turn, entry);
    els.log.append(entry.el);
    refreshListAffordances();
  }

  // ------------------------------------------------------------------ session: load, reload, new
  async function loadHistory() {
    if (storageGet(KEY.started) !== state.sessionId) return; // nothing said in this session yet
    setBusy(true);
    try {
      await fetchHistory();
    } finally {
      setBusy(false);
    }
  }

  async function fetchHistory() {
    let response;
    try {
      const q = new URLSearchParams({ user_id: state.userId, session_id: state.sessionId });
      response = await fetch(API + "/history?" + q.toString(), { headers: { accept: "application/json" } });
    } catch (e) {
      showBanner(t("errors.history"), { label: t("retry"), run: () => { hideBanner(); loadHistory(); } });
      return;
    }
    if (response.status === 404) { state.transcript = []; renderAll(); return; } // nothing said yet
    if (response.status === 403) { newSession(false); return; }
    if (!response.ok) {
      showBanner(t("errors.history"), { label: t("retry"), run: () => { hideBanner(); loadHistory(); } });
      return;
    }
    const body = await response.json();
    const stored = storedTurns();
    let cursor = 0;
    state.transcript = (body.messages || []).map((m) => {
      if (m.role !== "assistant") return { role: "user", content: m.content };
      let turn = null;
      const at = stored.findIndex((s, i) => i >= cursor && s.response === m.content);
      if (at >= 0) { turn = stored[at]; cursor = at + 1; }
      if (Array.isArray(m.products)) {
        turn = Object.assign(turn ? { ...turn } : turnFields({ response: m.content }), { products: m.products });
        for (const k of ["run_id", "intent", "notices", "weak_matches", "brain"]) if (m[k] !== undefined) turn[k] = m[k];
      }
      return { role: "assistant", content: m.content, turn };
    });
    renderAll();
    scrollToEnd();
  }

  function newSession(deleteOld) {
    const old = state.sessionId;
    if (deleteOld && old && state.transcript.length) {
      fetch(API + "/session", {
        method: "DELETE",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ user_id: state.userId, session_id: old }),
      }).catch(() => {});
    }
    if (old) storageSet(KEY.turns + old, null);
    storageSet(KEY.started, null);
    state.sessionId = randomId("web-");
    storageSet(KEY.session, state.sessionId);
    state.transcript = [];
    hideBanner();
    renderAll();
    els.input.focus();
  }

  function setLanguage(lang) {
    state.lang = STRINGS[lang] ? lang : "en";
    storageSet(KEY.lang, state.lang);
    applyStaticStrings();
    if (state.busy) state.rerender = true; // after the turn in progress
    else renderAll();
  }

  function init() {
    Object.assign(els, {
      log: $("#log"), form: $("#form"), input: $("#message"), send: $("#send"), progress: $("#progress"),
      banner: $("#banner"), lang: $("#lang"), newChat: $("#new-chat"),
    });
    const savedLang = storageGet(KEY.lang);
    const browserLang = (navigator.language || "en").toLowerCase().startsWith("es") ? "es" : "en";
    state.lang = STRINGS[savedLang] ? savedLang : browserLang;
    state.userId = storageGet(KEY.user) || randomId("web-");
    storageSet(KEY.user, state.userId);
    state.sessionId = storageGet(KEY.session) || randomId("web-");
    storageSet(KEY.session, state.sessionId);
    applyStaticStrings();

    els.form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const text = els.input.value;
      if (!text.trim() || state.busy) return;
      els.input.value = "";
      autoGrow();
      send(text);
    });
    els.input.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
        ev.preventDefault();
        els.form.requestSubmit();
      }
    });
    function autoGrow() {
      els.input.style.height = "auto";
      els.input.style.height = Math.min(els.input.scrollHeight, 160) + "px";
    }
    els.input.addEventListener("input", autoGrow);
    els.lang.addEventListener("change", () => setLanguage(els.lang.value));
    els.newChat.addEventListener("click", () => { if (!state.busy) newSession(true); });

    renderAll();
    loadHistory();
    // Focus the message box on desktops; on touch phones that would pop the keyboard over the page.
    if (window.matchMedia && window.matchMedia("(pointer: fine)").matches) els.input.focus();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
