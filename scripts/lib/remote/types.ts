// Off-site storage behind a small interface; rclone implements it (local paths, WebDAV, SFTP,
// S3 ... whatever rclone speaks). Paths are relative to the remote's root, with "/" separators.

export interface RemoteEntry {
  path: string;
  bytes: number;
  /** Lower-case hex sha256 when the backend can tell it without a download. */
  sha256?: string;
}

export interface Remote {
  readonly description: string;
  /** Copies a local file or directory (recursively) to `remotePath`. */
  upload(localPath: string, remotePath: string, options?: { exclude?: string[] }): Promise<void>;
  downloadFile(remotePath: string, localPath: string): Promise<void>;
  downloadDir(remotePath: string, localPath: string, options?: { exclude?: string[] }): Promise<void>;
  /**
   * Files under directory `remotePath`, recursively, paths relative to it; [] when it does not
   * exist. `hashes: false` skips the hashes (on S3 a large object's hash costs a request of its own).
   */
  list(remotePath: string, options?: { hashes?: boolean }): Promise<RemoteEntry[]>;
  /** sha256 of one file, downloading it when the backend cannot hash. */
  hash(remotePath: string): Promise<string>;
  /** Removes a directory and everything in it (nothing when it does not exist). */
  removeDir(remotePath: string): Promise<void>;
  /**
   * Fails, saying so, when these credentials may not delete: makes an empty file at `remotePath`
   * and removes it. For what deletes through another program (restic), which would retry a refusal.
   */
  checkRemoval(remotePath: string): Promise<void>;
}
