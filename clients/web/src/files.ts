/** Files in and out: reading a chosen or dropped file, saving bytes as a download. */

/** The server takes cards and avatars up to 20 MiB. */
export const MAX_FILE_BYTES = 20 * 1024 * 1024;

/** The file's bytes, or an Error in words when it is too big to send. */
export async function readFile(file: File): Promise<Uint8Array> {
  if (file.size > MAX_FILE_BYTES) {
    throw new Error(`${file.name} is ${(file.size / 1024 / 1024).toFixed(1)} MiB; the limit is 20 MiB`);
  }
  return new Uint8Array(await file.arrayBuffer());
}

/** Offers `data` as a download named `filename`. */
export function download(data: Uint8Array, contentType: string, filename: string): void {
  const url = URL.createObjectURL(new Blob([data as BlobPart], { type: contentType || "application/octet-stream" }));
  const a = document.createElement("a");
  a.href = url;
  a.download = filename || "download";
  a.hidden = true;
  document.body.appendChild(a);
  a.click();
  a.remove();
  // The browser has taken the URL by the time the click returns; keep it a little for slow ones.
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

/** Whether a drag carries files (not text or a link from the page). */
export function hasFiles(e: DragEvent): boolean {
  return Boolean(e.dataTransfer && Array.from(e.dataTransfer.types).includes("Files"));
}
