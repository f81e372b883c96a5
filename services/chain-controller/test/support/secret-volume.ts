import { copyFileSync, mkdirSync, readlinkSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';

/**
 * A directory laid out as kubelet mounts a Secret volume (its atomic writer): the files live in
 * a timestamped directory, `..data` is a symlink to it, and each file name is a symlink through
 * `..data`. An update writes a new directory and swaps `..data` by a rename, so a reader sees
 * every file of the old version or every file of the new one: a key and its certificate change
 * together.
 */
export class SecretVolume {
  private version = 0;

  /** files: each file's name in the volume and the path its first content is copied from */
  constructor(
    readonly dir: string,
    files: Record<string, string>,
  ) {
    mkdirSync(dir, { recursive: true });
    this.write(files);
    for (const name of Object.keys(files)) symlinkSync(join('..data', name), this.path(name));
  }

  /** Where a file of the volume is read from (through `..data`). */
  path(name: string): string {
    return join(this.dir, name);
  }

  /** Replaces every file at once: the new contents from the paths given, by file name. */
  update(files: Record<string, string>): void {
    const old = readlinkSync(join(this.dir, '..data'));
    this.write(files);
    rmSync(join(this.dir, old), { recursive: true, force: true });
  }

  private write(files: Record<string, string>): void {
    const version = `..${process.pid}_${++this.version}`;
    mkdirSync(join(this.dir, version));
    for (const [name, from] of Object.entries(files))
      copyFileSync(from, join(this.dir, version, name));
    symlinkSync(version, join(this.dir, '..data_tmp'));
    renameSync(join(this.dir, '..data_tmp'), join(this.dir, '..data'));
  }
}
