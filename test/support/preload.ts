// Loaded before every test file (bunfig.toml). Keeps test output readable: the app logs nothing
// unless NOTIFY_TEST_LOG is set.
process.env.NOTIFY_LOG_LEVEL ??= process.env.NOTIFY_TEST_LOG ? "debug" : "silent";
