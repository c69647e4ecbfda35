// Number formatting and tiny DOM helpers shared by every panel. The server sends non-finite
// numbers as null: every formatter shows null (or anything not a finite number) as a dash.

export const DASH = "–";

export function isNum(v) {
  return typeof v === "number" && Number.isFinite(v);
}

// a diverging loss reaches 1e31: switch to an exponent before the text gets wide
export function fixed(v, digits = 4) {
  if (!isNum(v)) return DASH;
  return Math.abs(v) >= 1e5 ? exp(v, 3) : v.toFixed(digits);
}

// 5.977e+31 -> "5.98e31" (short enough for a chart axis or a table cell)
export function exp(v, digits = 3) {
  const [mantissa, power] = v.toExponential(digits - 1).split("e");
  return `${Number(mantissa)}e${String(Number(power)).replace("-", "−")}`;
}

export function pct(v, digits = 1) {
  return isNum(v) ? (100 * v).toFixed(digits) + "%" : DASH;
}

export function int(v) {
  return isNum(v) ? Math.round(v).toLocaleString("en-US") : DASH;
}

// 3 significant digits, no exponent for everyday values: 0.01, 1.23e-5, 2.5
export function sig(v, digits = 3) {
  if (!isNum(v)) return DASH;
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 1e-3 && a < 1e6) return String(Number(v.toPrecision(digits)));
  return exp(v, digits);
}

export function ms(v) {
  if (!isNum(v)) return DASH;
  return (v >= 10 ? v.toFixed(1) : v >= 1 ? v.toFixed(2) : v.toFixed(3)) + " ms";
}

// 1234567 -> "1.23M" (decimal prefixes, as FLOPs are quoted)
export function si(v, unit = "") {
  if (!isNum(v)) return DASH;
  for (const [scale, prefix] of [[1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "k"]]) {
    if (Math.abs(v) >= scale) return (v / scale).toFixed(v / scale >= 100 ? 0 : 2) + prefix + unit;
  }
  return String(Math.round(v * 100) / 100) + unit;
}

export function bytes(v) {
  if (!isNum(v)) return DASH;
  if (v >= 2 ** 30) return (v / 2 ** 30).toFixed(2) + " GiB";
  if (v >= 2 ** 20) return (v / 2 ** 20).toFixed(1) + " MiB";
  if (v >= 2 ** 10) return (v / 2 ** 10).toFixed(1) + " KiB";
  return v + " B";
}

// [H, W, C] -> "32×32×16"
export function shape(hwc) {
  return Array.isArray(hwc) ? hwc.join("×") : DASH;
}

export function formula(text) {
  return text ? text.replace(/(\d)x(\d)/g, "$1×$2").replace(/(\d)x(\d)/g, "$1×$2") : "";
}

// A base64 PNG from the server (with or without the data: prefix) as an <img> src.
export function pngSrc(b64) {
  if (!b64) return "";
  return b64.startsWith("data:") ? b64 : "data:image/png;base64," + b64;
}

// A label may arrive as a class name or as a class index.
export function labelName(label, classes) {
  if (typeof label === "number" && Array.isArray(classes) && classes[label] !== undefined) {
    return classes[label];
  }
  return label === null || label === undefined ? DASH : String(label);
}

// el("div", {class: "x", onclick: f}, "text", child) -> element
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      node.addEventListener(key.slice(2), value);
    } else if (key === "class") {
      node.className = value;
    } else if (key === "text") {
      node.textContent = value;
    } else if (key === "style" && typeof value === "object") {
      Object.assign(node.style, value);
    } else {
      node.setAttribute(key, value === true ? "" : value);
    }
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}

// Set text only when it changed (no needless reflow on every metrics tick).
export function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

export function debounce(fn, wait) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), wait);
  };
}
