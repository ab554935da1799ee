// Where the encrypted file goes, and what the page may then claim (issue 10, point 1).
//
// With the save dialog (File System Access) the page knows: the worker's output is written to
// the chosen file part by part while it is made, so a file of a gigabyte never sits whole in
// the browser's memory, and «lagret» is said only after the file has been closed. The dialog
// itself leaves an empty file at the chosen place (the standard says so), so a run that fails
// or is cancelled removes it again: nothing half-written, nothing empty stays behind.
//
// Without it the page can only ask the browser to download the file. Whether that download is
// allowed, finishes, or gets another name because the folder already has one, the page cannot
// know, and it says so.

class ChosenFile {
  constructor(handle) {
    this.handle = handle;
    this.name = handle.name;
    this.writable = null;
    this.queue = Promise.resolve();
    this.failure = null; // the first write that failed
  }

  // Appends the next part; resolves when it is written or the writing has failed.
  write(bytes) {
    this.queue = this.queue.then(async () => {
      if (this.failure) return;
      try {
        if (!this.writable) this.writable = await this.handle.createWritable();
        await this.writable.write(bytes);
      } catch (error) {
        this.failure = error;
      }
    });
    return this.queue;
  }

  // After the last part. When this resolves, the whole file is on disk under its name.
  async close() {
    await this.queue;
    if (this.failure) throw this.failure;
    if (!this.writable) this.writable = await this.handle.createWritable();
    await this.writable.close();
    this.writable = null;
  }

  // After a fault or a cancel: what was written is dropped (a writable writes to a temporary
  // file until it is closed) and the empty file the dialog made is removed. True if it is gone.
  async discard() {
    await this.queue;
    if (this.writable) {
      try {
        await this.writable.abort();
      } catch (error) {
        console.warn(error);
      }
      this.writable = null;
    }
    try {
      await this.handle.remove();
      return true;
    } catch (error) {
      console.warn('Den tomme filen kunne ikke fjernes', error);
      return false;
    }
  }
}

// The browser is asked to download ``blob`` as ``name`` (already made safe: filename.js).
function askBrowserToDownload(blob, name) {
  const url = URL.createObjectURL(blob);
  const link = document.createElement('a');
  link.href = url;
  link.download = name;
  link.hidden = true;
  document.body.append(link);
  link.click();
  link.remove();
  // The download holds its own reference to the data; the URL is only needed to start it.
  setTimeout(() => URL.revokeObjectURL(url), 120000);
}
