// fetch wrapper: JSON in, JSON out, and every 4xx/5xx turned into an ApiError carrying the
// server's error shape {"error", "detail", "layer"?, "field"?} so panels can show `detail`
// verbatim next to the field it names.

export class ApiError extends Error {
  constructor(status, body, retryAfter = null) {
    const detail = errorText(body) || `HTTP ${status}`;
    super(detail);
    this.status = status;
    this.code = (body && body.error) || null;
    this.detail = detail;
    this.layer = body && body.layer !== undefined ? body.layer : null;
    this.field = body && body.field !== undefined ? body.field : null;
    this.retryAfter = retryAfter;
  }
}

// The contract's shape has a string detail; FastAPI's own 422 has a list of {loc, msg}.
function errorText(body) {
  if (!body) return "";
  if (typeof body === "string") return body;
  const detail = body.detail;
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    return detail.map((d) => (d && d.msg ? `${(d.loc || []).join(".")}: ${d.msg}` : String(d)))
      .join("; ");
  }
  return body.error || "";
}

// Whether the server answered at all: the status pill says "disconnected" while it does not.
function reached(yes) {
  window.dispatchEvent(new CustomEvent("convnet:reach", { detail: { reached: yes } }));
}

export async function api(path, { method = "GET", json, form, signal } = {}) {
  const options = { method, headers: { Accept: "application/json" }, credentials: "same-origin", signal };
  if (json !== undefined) {
    options.body = JSON.stringify(json);
    options.headers["Content-Type"] = "application/json";
  } else if (form !== undefined) {
    options.body = form;
  }
  let response;
  try {
    response = await fetch(path, options);
  } catch (err) {
    if (err.name === "AbortError") throw err;
    reached(false);
    throw new ApiError(0, { error: "network", detail: "Could not reach the server; is it still running?" });
  }
  reached(true);
  const text = await response.text();
  let body = null;
  if (text) {
    try {
      body = JSON.parse(text);
    } catch {
      body = response.ok ? null : text.slice(0, 500);
    }
  }
  if (!response.ok) {
    const retry = response.headers.get("Retry-After");
    throw new ApiError(response.status, body || response.statusText, retry ? Number(retry) : null);
  }
  return body;
}

// GET a file and save it under the server's Content-Disposition name; errors as ApiError.
export async function download(path, fallbackName) {
  let response;
  try {
    response = await fetch(path, { credentials: "same-origin" });
  } catch {
    throw new ApiError(0, { error: "network", detail: "Could not reach the server." });
  }
  if (!response.ok) {
    const text = await response.text();
    let body = text;
    try { body = JSON.parse(text); } catch { /* plain text error */ }
    throw new ApiError(response.status, body || response.statusText);
  }
  const blob = await response.blob();
  const disposition = response.headers.get("Content-Disposition") || "";
  const match = /filename\*?=(?:UTF-8'')?"?([^";]+)"?/i.exec(disposition);
  const name = match ? decodeURIComponent(match[1]) : fallbackName;
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
  return { name, bytes: blob.size };
}
