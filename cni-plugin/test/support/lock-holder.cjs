// A pod-lock holder in its own process, for test/integration/lock.test.ts (run under
// `unshare --pid --fork` to put it in another pid namespace). Uses the built plugin (dist/).
//   lock-holder.cjs loop LOCKDIR KEY ITERATIONS MARKER: takes the lock ITERATIONS times; inside,
//     creates MARKER exclusively (failing if another holder is inside) and removes it again.
//   lock-holder.cjs hold LOCKDIR KEY: takes the lock, prints "held", and keeps it until killed.
// Prints "pid N" first: its pid as its own pid namespace numbers it.
'use strict';
const { openSync, closeSync, unlinkSync } = require('node:fs');
const { join } = require('node:path');
const { withLock } = require(join(__dirname, '..', '..', 'dist', 'lock.js'));

const [mode, lockDir, key, iterations, marker] = process.argv.slice(2);
process.stdout.write(`pid ${process.pid}\n`);

async function loop() {
  for (let i = 0; i < Number(iterations); i++) {
    await withLock(lockDir, key, 60_000, async () => {
      try {
        closeSync(openSync(marker, 'wx'));
      } catch (err) {
        process.stdout.write(`overlap ${err.code}\n`);
        process.exit(3);
      }
      // Stay inside a little, so a holder that wrongly got in too would find the marker.
      await new Promise((r) => setTimeout(r, 3));
      unlinkSync(marker);
    });
  }
  process.stdout.write(`done ${iterations}\n`);
}

async function hold() {
  await withLock(lockDir, key, 60_000, async () => {
    process.stdout.write('held\n');
    // Until killed (a timer keeps the process alive).
    await new Promise(() => setInterval(() => undefined, 1 << 30));
  });
}

(mode === 'hold' ? hold() : loop()).catch((err) => {
  process.stdout.write(`error ${err.message}\n`);
  process.exit(1);
});
