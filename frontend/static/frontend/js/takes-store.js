// Unsent takes, kept in this browser's IndexedDB until they are submitted or discarded, so that a reload, a
// crash or a closed tab loses no recording. One record per (owner, prompt): the audio as a Blob, the sentence
// it reads, its length and its place in the set. The owner is the contributor's pseudonymous speaker id, so
// that someone else logging in on the same browser is never offered another person's takes.
//
// IndexedDB is used directly (four small requests wrapped in promises need no library). It can be missing or
// refuse to open (a private window, storage turned off, the quota spent): then every call resolves to nothing
// and the page works as before, with its takes in memory only.

const DB_NAME = "openphone-recorder";
const DB_VERSION = 1;
const STORE = "takes";

let opening = null;

function open() {
  if (!opening) {
    opening = new Promise((resolve, reject) => {
      if (!("indexedDB" in window)) { reject(new Error("IndexedDB is not available")); return; }
      const req = indexedDB.open(DB_NAME, DB_VERSION);
      req.onupgradeneeded = () => {
        const store = req.result.createObjectStore(STORE, { keyPath: ["owner", "promptId"] });
        store.createIndex("owner", "owner");
      };
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
      req.onblocked = () => reject(new Error("IndexedDB is blocked by another tab"));
    });
  }
  return opening;
}

// Runs ``work(store)`` in one transaction; resolves with its result once the transaction has committed (a
// take reported as kept is on disk), or with ``fallback`` when storage is unavailable.
async function withStore(mode, work, fallback) {
  try {
    const db = await open();
    const tx = db.transaction(STORE, mode);
    const result = work(tx.objectStore(STORE));
    await new Promise((resolve, reject) => {
      tx.oncomplete = resolve;
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error || new Error("aborted"));
    });
    return result instanceof IDBRequest ? result.result : result;
  } catch (error) {
    console.warn("Unsent takes cannot be kept in this browser:", error);
    return fallback;
  }
}

// Keeps (or replaces) the take of one sentence. ``prompt`` is the sentence as the page shows it.
export function keepTake(owner, { prompt, blob, duration, position }) {
  const record = { owner, promptId: prompt.id, prompt, blob, duration, position, savedAt: Date.now() };
  return withStore("readwrite", (store) => { store.put(record); return true; }, false);
}

export function forgetTake(owner, promptId) {
  return withStore("readwrite", (store) => { store.delete([owner, promptId]); return true; }, false);
}

// This owner's kept takes, in the order of their sentences in the set they were recorded in.
export async function keptTakes(owner) {
  const records = await withStore("readonly", (store) => store.index("owner").getAll(owner), []);
  return (records || []).sort((a, b) => (a.position - b.position) || (a.savedAt - b.savedAt));
}
