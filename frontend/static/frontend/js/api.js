// Talking to /api/v1/ from the pages: the session cookie authenticates, the CSRF cookie guards writes.

export function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `The server answered ${status}.`);
    this.status = status;
    this.code = (body && body.code) || "http_error";
    this.body = body || {};
  }
}

async function parse(response) {
  const text = await response.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch { body = null; }
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

export async function getJson(url) {
  return parse(await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } }));
}

export async function postJson(url, data) {
  return parse(await fetch(url, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrfToken() },
    body: data === undefined ? undefined : JSON.stringify(data),
  }));
}

// A multipart upload with progress events (fetch has none). Network failures are retried with backoff:
// the server recognises the same recording sent again and answers with the stored clip, so a retry
// never makes a duplicate.
export function uploadWithRetry(url, formData, { onProgress, attempts = 4, delayMs = 800 } = {}) {
  return new Promise((resolve, reject) => {
    let attempt = 0;
    const send = () => {
      attempt += 1;
      const xhr = new XMLHttpRequest();
      xhr.open("POST", url);
      xhr.withCredentials = true;
      xhr.setRequestHeader("X-CSRFToken", csrfToken());
      xhr.setRequestHeader("Accept", "application/json");
      xhr.upload.onprogress = (event) => {
        if (event.lengthComputable && onProgress) onProgress(event.loaded / event.total);
      };
      xhr.onload = () => {
        let body = null;
        try { body = JSON.parse(xhr.responseText); } catch { body = null; }
        if (xhr.status >= 200 && xhr.status < 300) resolve(body);
        else if (xhr.status >= 500 && attempt < attempts) setTimeout(send, delayMs * attempt);
        else reject(new ApiError(xhr.status, body));
      };
      xhr.onerror = () => {
        if (attempt < attempts) setTimeout(send, delayMs * attempt);
        else reject(new ApiError(0, { code: "network_error", message: "The network failed; check your connection and submit again." }));
      };
      xhr.send(formData);
    };
    send();
  });
}
