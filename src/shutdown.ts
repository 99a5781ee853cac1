/** Graceful-shutdown budget: inside Fly's default 5 s kill_timeout and Docker's 10 s stop timeout. */
export const SHUTDOWN_GRACE_MS = 4_000
