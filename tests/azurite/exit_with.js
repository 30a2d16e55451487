// tests/azurite/exit_with.js — preloaded (node --require) into Azurite by
// tests/e2e/azlib.sh: the emulator leaves by itself once process
// RENC_AZ_EXIT_WITH (the test's shell) is gone, so that a test killed without
// running its EXIT trap (a ctest timeout) leaves no server behind.
"use strict";
const pid = Number(process.env.RENC_AZ_EXIT_WITH || 0);
if (pid > 0) {
  setInterval(() => {
    try {
      process.kill(pid, 0);
    } catch (e) {
      if (e.code === "ESRCH") process.exit(0);
    }
  }, 500).unref();
}
