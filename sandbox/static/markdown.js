/* A small, safe Markdown renderer for CDS card details.
 * It escapes all HTML first, then adds only what AIMSS cards emit (cds_service/cards.py):
 * paragraphs, "- " lists, **bold** (a bold-only line becomes a heading), _italic_, `code`,
 * and [links](https://...) restricted to http(s). */
"use strict";

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => (
    { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

function renderInline(escaped) {
  return escaped
    .replace(/`([^`]+)`/g, "<code>$1</code>")
    .replace(/\[([^\]]+)\]\((https?:\/\/[^\s)]+)\)/g,
      '<a href="$2" target="_blank" rel="noopener noreferrer">$1</a>')
    .replace(/\*\*([^*]+)\*\*/g, "<strong>$1</strong>")
    .replace(/(^|[\s(])_([^_]+)_(?=$|[\s).,;:])/g, "$1<em>$2</em>");
}

function renderMarkdown(markdown) {
  const html = [];
  let list = null;
  let paragraph = [];
  const flushParagraph = () => {
    if (paragraph.length) html.push(`<p>${paragraph.join(" ")}</p>`);
    paragraph = [];
  };
  const flushList = () => {
    if (list) html.push(`<ul>${list.map((item) => `<li>${item}</li>`).join("")}</ul>`);
    list = null;
  };
  for (const raw of String(markdown || "").split(/\r?\n/)) {
    const line = escapeHtml(raw.trim());
    const item = /^[-*] (.*)$/.exec(line);
    if (item) {
      flushParagraph();
      (list = list || []).push(renderInline(item[1]));
    } else if (!line) {
      flushParagraph();
      flushList();
    } else if (/^\*\*[^*]+\*\*$/.test(line)) {
      flushParagraph();
      flushList();
      html.push(`<h4>${line.slice(2, -2)}</h4>`);
    } else {
      flushList();
      paragraph.push(renderInline(line));
    }
  }
  flushParagraph();
  flushList();
  return html.join("");
}
